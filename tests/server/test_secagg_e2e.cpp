// Secure aggregation through the real pocketllm-server over TLS: devices (the secagg state machines,
// driven over the project's HTTPS client) take masked rounds through their phases; hostile and
// out-of-phase messages get their codes; and kill -9 in the middle of a round abandons it on restart —
// never a wrong sum applied — while a round that completes applies exactly the weighted mean.
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <thread>

#include "pocketllm/secagg/device_round.h"
#include "pocketllm/secagg/wire.h"
#include "server_process.h"

using namespace pocketllm;
using namespace pocketllm::server::test;
using nlohmann::json;

namespace {

const std::string kModelId(64, 'd');

json body_of(const Result<net::HttpResult>& r) {
  if (!r) throw std::runtime_error(r.status().to_string());
  return json::parse(r->body);
}

struct Env {
  std::string dir = temp_dir("secagg-e2e");
  Env() { make_test_cert(dir); }
  ~Env() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

struct Dev {
  std::string cred;
  std::unique_ptr<secagg::DeviceRound> round;
  std::vector<float> coeffs;
  uint64_t examples = 0;
};

class Federation {
 public:
  explicit Federation(ServerProcess& s) : server_(s) {}
  net::HttpClient& c() {
    if (!client_) client_ = server_.client();
    return *client_;
  }
  void reconnect() { client_.reset(); }
  json round(const std::string& cred, uint64_t r) { return body_of(c().request("GET", "/v1/tasks/s/rounds/" + std::to_string(r), "", cred)); }
  std::string path(uint64_t r, const std::string& step) { return "/v1/tasks/s/rounds/" + std::to_string(r) + "/secagg/" + step; }
  int post(const std::string& cred, uint64_t r, const std::string& step, const std::string& body) {
    return c().request("POST", path(r, step), body, cred)->status;
  }
  json get(const std::string& cred, uint64_t r, const std::string& step) { return body_of(c().request("GET", path(r, step), "", cred)); }
  // Waits until round r is in `phase` (or is no longer open: then returns false).
  bool wait_phase(const std::string& cred, uint64_t r, const std::string& phase) {
    for (int i = 0; i < 500; ++i) {
      const json j = round(cred, r);
      if (j["state"] != "open") return false;
      if (j["secagg"]["phase"] == phase) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  uint64_t version(const std::string& cred) { return body_of(c().request("GET", "/v1/tasks/s", "", cred))["version"].get<uint64_t>(); }

  // Phase 1 for every device: fresh state machines from the round's config, keys posted.
  void advertise(uint64_t r, std::vector<Dev>* devs) {
    const json info = round((*devs)[0].cred, r);
    REQUIRE(info["secagg"]["phase"] == "advertise_keys");
    auto config = secagg::parse_round_config(info["secagg"]["config"]);
    REQUIRE(config.is_ok());
    for (Dev& d : *devs) {
      d.round = secagg::DeviceRound::create(*config).value();
      REQUIRE(post(d.cred, r, "keys", secagg::to_json(d.round->advertise()).dump()) == 201);
    }
  }
  void share(uint64_t r, std::vector<Dev>* devs) {
    REQUIRE(wait_phase((*devs)[0].cred, r, "share_keys"));
    for (Dev& d : *devs) {
      auto roster = secagg::parse_roster(get(d.cred, r, "roster"));
      REQUIRE(roster.is_ok());
      auto m = d.round->share_keys(*roster);
      REQUIRE(m.is_ok());
      REQUIRE(post(d.cred, r, "shares", secagg::to_json(*m).dump()) == 201);
    }
  }
  void mask(uint64_t r, const secagg::InputSpec& spec, std::vector<Dev>* devs) {
    REQUIRE(wait_phase((*devs)[0].cred, r, "masked_input"));
    for (Dev& d : *devs) {
      auto inbox = secagg::parse_inbox(get(d.cred, r, "inbox"));
      REQUIRE(inbox.is_ok());
      auto m = d.round->masked_input(secagg::encode_input(spec, d.coeffs, d.examples).value(), *inbox);
      REQUIRE(m.is_ok());
      REQUIRE(post(d.cred, r, "masked", secagg::to_json(*m).dump()) == 201);
    }
  }
  void unmask(uint64_t r, std::vector<Dev>* devs) {
    REQUIRE(wait_phase((*devs)[0].cred, r, "unmask"));
    for (Dev& d : *devs) {
      auto survivors = secagg::parse_survivors(get(d.cred, r, "survivors"));
      REQUIRE(survivors.is_ok());
      auto m = d.round->unmask(*survivors);
      REQUIRE(m.is_ok());
      REQUIRE(post(d.cred, r, "unmask", secagg::to_json(*m).dump()) == 201);
    }
  }

 private:
  ServerProcess& server_;
  std::unique_ptr<net::HttpClient> client_;
};

std::string enrol(net::HttpClient& c) {
  auto tok = body_of(c.request("POST", "/v1/admin/enrolment-tokens", R"({"uses":1})", kAdminToken))["token"].get<std::string>();
  return body_of(c.request("POST", "/v1/enrol", json{{"token", tok}}.dump()))["credential"].get<std::string>();
}

}  // namespace

TEST_CASE("e2e secagg: hostile messages, kill -9 mid-round abandons it, a completed round applies the exact mean",
          "[server][e2e][secagg][durability]") {
  Env env;
  ServerProcess server(POCKETLLM_SERVER_BIN, env.dir, {"--device-rate", "0"});
  server.start();
  Federation f(server);
  const std::string task = R"({"id":"s","base_model_id":")" + kModelId +
                           R"(","tau":2,"batch_size":4,"round_seconds":600,"goal_submissions":3,"min_submissions":2,)"
                           R"("secagg":{"mode":"masked","bound":0.5,"phase_seconds":600}})";
  REQUIRE(f.c().request("POST", "/v1/admin/tasks", task, kAdminToken)->status == 201);
  // Refused at creation: what cannot compose with a secure sum.
  for (const char* bad : {R"("strategy":"median")", R"("strategy":"trimmed_mean")", R"("max_staleness":4)",
                                 R"("min_submissions":1)", R"("clip":0.1)"}) {
    const std::string body = R"({"id":"bad","base_model_id":")" + kModelId + R"(",)" + bad + R"(,"secagg":{"mode":"masked","bound":1}})";
    auto r = f.c().request("POST", "/v1/admin/tasks", body, kAdminToken);
    INFO(bad << " -> " << r->body);
    CHECK(r->status == 422);
  }
  REQUIRE(f.c().request("POST", "/v1/admin/tasks", R"({"id":"plain","base_model_id":")" + kModelId + R"(","tau":2})", kAdminToken)->status == 201);
  std::vector<Dev> devs(3);
  for (size_t i = 0; i < devs.size(); ++i) {
    devs[i].cred = enrol(f.c());
    devs[i].coeffs = {0.01f * static_cast<float>(i + 1), -0.003f * static_cast<float>(i + 2)};
    devs[i].examples = 3 + i * 4;  // 3, 7, 11: the last is capped at tau * batch = 8
  }
  const std::string outsider = enrol(f.c());
  const json info = f.round(devs[0].cred, 1);
  const secagg::InputSpec spec = secagg::parse_round_config(info["secagg"]["config"]).value().input;

  SECTION("hostile and out-of-phase messages") {
    CHECK(f.post(outsider, 1, "keys", "{not json") == 400);
    CHECK(f.post(outsider, 1, "keys", R"({"enc_public":"00","mask_public":"00"})") == 422);
    CHECK(f.post(outsider, 1, "keys", R"({"enc_public":")" + std::string(64, 'a') + R"(","mask_public":")" + std::string(64, 'b') +
                                          R"(","extra":1})") == 422);
    CHECK(f.post(outsider, 1, "masked", R"({"y":[]})") == 409);   // not this phase
    CHECK(f.post(outsider, 1, "teleport", "{}") == 404);          // no such step
    CHECK(f.c().request("GET", f.path(1, "roster"), "", outsider)->status == 409);  // too early
    CHECK(f.c().request("POST", "/v1/tasks/plain/rounds/1/secagg/keys", "{}", outsider)->status == 404);  // no_secagg
    CHECK(f.c().request("POST", "/v1/tasks/s/rounds/1/submissions", R"({"coeffs":[0.1,0.1],"examples":1,"base_version":0})", outsider)
              ->status == 422);  // secagg_required: a masked round takes no plain scalars
    f.advertise(1, &devs);
    CHECK(f.post(devs[0].cred, 1, "keys", secagg::to_json(devs[0].round->advertise()).dump()) == 409);  // a replay
    f.share(1, &devs);
    REQUIRE(f.wait_phase(devs[0].cred, 1, "masked_input"));
    CHECK(f.c().request("GET", f.path(1, "inbox"), "", outsider)->status == 403);  // not a participant
    f.mask(1, spec, &devs);
    f.unmask(1, &devs);
    for (int i = 0; i < 200 && f.version(devs[0].cred) == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    CHECK(f.version(devs[0].cred) == 2);
    CHECK(f.post(devs[0].cred, 1, "unmask", R"({"shares":[]})") == 409);  // the round is over
  }

  SECTION("kill -9 between phases abandons the round; a completed round applies the exact weighted mean") {
    // Round 1 dies after its shares: on restart it is abandoned and round 2 opens on the same version.
    f.advertise(1, &devs);
    f.share(1, &devs);
    server.kill_now(SIGKILL);
    server.start();
    f.reconnect();
    CHECK(f.round(devs[0].cred, 1)["state"] == "abandoned");
    CHECK(f.round(devs[0].cred, 2)["state"] == "open");
    CHECK(f.version(devs[0].cred) == 0);
    CHECK(f.post(devs[0].cred, 1, "masked", R"({"y":["0000000000000000","0000000000000000","0000000000000000"]})") == 409);
    // Round 2 dies with every masked input in, before unmasking: abandoned, nothing applied.
    f.advertise(2, &devs);
    f.share(2, &devs);
    f.mask(2, spec, &devs);
    server.kill_now(SIGKILL);
    server.start();
    f.reconnect();
    CHECK(f.round(devs[0].cred, 2)["state"] == "abandoned");
    CHECK(f.version(devs[0].cred) == 0);
    // Round 3 completes: the log gets the weighted mean of the clipped scalars, computed here in double.
    f.advertise(3, &devs);
    f.share(3, &devs);
    f.mask(3, spec, &devs);
    f.unmask(3, &devs);
    for (int i = 0; i < 200 && f.version(devs[0].cred) == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    REQUIRE(f.version(devs[0].cred) == 2);
    server.kill_now(SIGKILL);  // and the applied round survives a crash
    server.start();
    f.reconnect();
    CHECK(f.version(devs[0].cred) == 2);
    const json log = body_of(f.c().request("GET", "/v1/tasks/s/log?since=0", "", devs[0].cred));
    REQUIRE(log["entries"].size() == 2);
    for (size_t k = 0; k < 2; ++k) {
      double num = 0, den = 0;
      for (const Dev& d : devs) {
        const double w = static_cast<double>(std::min<uint64_t>(d.examples, 8));
        num += w * std::max(-0.5, std::min(0.5, static_cast<double>(d.coeffs[k])));
        den += w;
      }
      CHECK(log["entries"][k]["coeff"].get<double>() == Approx(num / den).epsilon(1e-6));
    }
    // The round open at the crash (4) is abandoned too — its phase state was memory — and 5 is open.
    CHECK(f.round(devs[0].cred, 4)["state"] == "abandoned");
    CHECK(f.round(devs[0].cred, 5)["state"] == "open");
  }
}
