// The real pocketllm-server over TLS on loopback, driven by the project's HTTPS client: the protocol
// through the network, certificate checks, limits and timeouts, graceful shutdown, and kill -9 under
// load with every acknowledged submission and applied round checked after restarts.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <cstring>

#include "pocketllm/common/safetensors.h"
#include "pocketllm/common/sha256.h"
#include "pocketllm/common/update_log.h"
#include "server_process.h"

using namespace pocketllm;
using namespace pocketllm::server;
using namespace pocketllm::server::test;
using nlohmann::json;

namespace {
const std::string kModelId(64, 'c');

json body_of(const Result<net::HttpResult>& r) {
  if (!r) throw std::runtime_error(r.status().to_string());
  return json::parse(r->body);
}

std::string enrol(net::HttpClient& c) {
  auto tok = body_of(c.request("POST", "/v1/admin/enrolment-tokens", R"({"uses":1})", kAdminToken))["token"].get<std::string>();
  return body_of(c.request("POST", "/v1/enrol", json{{"token", tok}}.dump()))["credential"].get<std::string>();
}

struct Env {
  std::string dir = temp_dir("e2e");
  Env() { make_test_cert(dir); }
  ~Env() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};
}  // namespace

TEST_CASE("e2e: enrol, round, submit, aggregate and sync over HTTPS with keep-alive", "[server][e2e]") {
  Env env;
  ServerProcess server(POCKETLLM_SERVER_BIN, env.dir);
  server.start();
  auto admin = server.client();
  REQUIRE(admin->request("GET", "/healthz")->status == 200);
  REQUIRE(admin->request("GET", "/readyz")->status == 200);
  const std::string task = R"({"id":"e2e","base_model_id":")" + kModelId + R"(","tau":2,"round_seconds":30,"goal_submissions":2,"min_submissions":2})";
  REQUIRE(admin->request("POST", "/v1/admin/tasks", task, kAdminToken)->status == 201);
  const std::string a = enrol(*admin), b = enrol(*admin);
  auto dev = server.client();
  auto round = body_of(dev->request("GET", "/v1/tasks/e2e/round", "", a));
  CHECK(dev->request("POST", "/v1/tasks/e2e/rounds/1/submissions", R"({"coeffs":[0.5,-1],"examples":1,"base_version":0})", a)->status == 201);
  const uint64_t sent_after_one = dev->bytes_sent();
  CHECK(dev->request("POST", "/v1/tasks/e2e/rounds/1/submissions", R"({"coeffs":[1.5,1],"examples":1,"base_version":0})", b)->status == 201);
  const uint64_t sent_second = dev->bytes_sent() - sent_after_one;
  // The goal count closes the round at the next tick.
  json log;
  for (int i = 0; i < 100; ++i) {
    log = body_of(dev->request("GET", "/v1/tasks/e2e/log?since=0", "", a));
    if (log["version"] == 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  REQUIRE(log["version"] == 2);
  CHECK(log["entries"][0]["seed"] == round["seeds"][0]);
  CHECK(log["entries"][0]["coeff"].get<double>() == 1.0);
  CHECK(log["entries"][1]["coeff"].get<double>() == 0.0);
  CHECK(dev->request("POST", "/v1/tasks/e2e/rounds/1/submissions", R"({"coeffs":[0.5,-1],"examples":1,"base_version":0})", a)->status == 409);
  // Keep-alive: the second submission reused the connection (one TLS handshake, a few hundred bytes per request).
  INFO("first exchanges " << sent_after_one << " bytes, the second submission " << sent_second);
  CHECK(sent_after_one > sent_second);
  CHECK(sent_second < 600);
  CHECK(dev->bytes_received() > 0);
  CHECK(server.kill_now(SIGTERM) == 0);
}

TEST_CASE("e2e: snapshots, revocation, rate limits and rejection cases over the network", "[server][e2e]") {
  Env env;
  ServerProcess server(POCKETLLM_SERVER_BIN, env.dir, {"--device-rate", "5", "--device-burst", "5"});
  server.start();
  auto admin = server.client();
  // Base weights on the server: one tensor, so snapshots can be checked by hand.
  std::vector<float> w(10);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.5f * static_cast<float>(i);
  REQUIRE(write_safetensors(env.dir + "/base.safetensors", {{"w", DType::kF32, {10}, w.data()}}).is_ok());
  const std::string task = R"({"id":"s","base_model_id":")" + kModelId + R"(","tau":2,"round_seconds":30,"goal_submissions":1,"min_submissions":1,"base_weights":")" +
                           env.dir + R"(/base.safetensors"})";
  REQUIRE(admin->request("POST", "/v1/admin/tasks", task, kAdminToken)->status == 201);
  const std::string a = enrol(*admin), b = enrol(*admin);
  auto dev = server.client();
  REQUIRE(dev->request("POST", "/v1/tasks/s/rounds/1/submissions", R"({"coeffs":[0.25,-0.5],"examples":1,"base_version":0})", a)->status == 201);
  json t;
  for (int i = 0; i < 100; ++i) {  // polled as the admin, who is not rate-limited
    t = body_of(admin->request("GET", "/v1/tasks/s", "", kAdminToken));
    if (t["version"] == 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  REQUIRE(t["version"] == 2);
  auto snap = dev->request("GET", "/v1/tasks/s/snapshot", "", a);
  REQUIRE(snap.is_ok());
  REQUIRE(snap->status == 200);
  CHECK(snap->header("x-pocketllm-sha256") == to_hex(sha256(snap->body)));
  CHECK(snap->header("x-pocketllm-version") == "2");
  auto file = SafetensorsFile::from_bytes(snap->body, "snapshot");
  REQUIRE(file.is_ok());
  auto log = UpdateLog::from_binary(dev->request("GET", "/v1/tasks/s/log?format=binary", "", a)->body);
  REQUIRE(log.is_ok());
  std::vector<float> expect = w;
  replay_log(nullptr, Distribution::kRademacher, log.value(), {{"w", expect.data(), expect.size()}});
  CHECK(std::memcmp(file->f32_view(*file->find("w")), expect.data(), 40) == 0);

  struct Case {
    const char* what;
    const char* method;
    std::string target, body, bearer;
    int status;
  };
  const std::vector<Case> cases = {
      {"no credential", "GET", "/v1/tasks/s/round", "", "", 401},
      {"malformed JSON", "POST", "/v1/tasks/s/rounds/2/submissions", "{\"coeffs\":", b, 400},
      {"wrong scalar count", "POST", "/v1/tasks/s/rounds/2/submissions", R"({"coeffs":[1],"examples":1,"base_version":2})", b, 422},
      {"late for round 1", "POST", "/v1/tasks/s/rounds/1/submissions", R"({"coeffs":[1,1],"examples":1,"base_version":0})", b, 409},
      {"unknown task", "GET", "/v1/tasks/nope/round", "", b, 404},
      {"a device on an admin endpoint", "POST", "/v1/admin/enrolment-tokens", "{}", b, 403},
  };
  auto other = server.client();
  for (const auto& c : cases) {
    INFO(c.what);
    auto r = other->request(c.method, c.target, c.body, c.bearer);
    REQUIRE(r.is_ok());
    CHECK(r->status == c.status);
  }
  // Revocation: b is refused from then on.
  const std::string id_b = b.substr(0, b.find('.'));
  CHECK(admin->request("POST", "/v1/admin/devices/" + id_b + "/revoke", "", kAdminToken)->status == 200);
  CHECK(other->request("GET", "/v1/tasks/s/round", "", b)->status == 403);
  // Rate limit: a burst beyond 5 requests from one device gets 429 with Retry-After.
  int limited = 0;
  std::string retry_after;
  for (int i = 0; i < 12; ++i) {
    auto r = dev->request("GET", "/v1/tasks/s/round", "", a);
    REQUIRE(r.is_ok());
    if (r->status == 429) {
      ++limited;
      retry_after = r->header("retry-after");
    }
  }
  CHECK(limited > 0);
  CHECK_FALSE(retry_after.empty());
  CHECK(server.kill_now(SIGTERM) == 0);
}

TEST_CASE("e2e: certificates are checked: CA file, certificate and key pins, a wrong CA or pin refused", "[server][e2e]") {
  Env env;
  make_test_cert(env.dir, "other");
  ServerProcess server(POCKETLLM_SERVER_BIN, env.dir);
  server.start();
  net::ClientOptions o;
  o.url = server.url();
  o.ca_file = env.dir + "/other.crt";
  auto wrong_ca = net::HttpClient::create(o);
  REQUIRE(wrong_ca.is_ok());
  auto r = wrong_ca.value()->request("GET", "/healthz");
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == StatusCode::kMismatch);

  // Pin: SHA-256 of the certificate's DER form, computed here with the openssl command.
  const std::string der = env.dir + "/server.der";
  REQUIRE(std::system(("openssl x509 -in " + env.dir + "/server.crt -outform DER -out " + der).c_str()) == 0);
  const std::string pin = to_hex(sha256(read_file(der).value()));
  o.ca_file.clear();
  o.pinned_sha256 = pin;
  CHECK(net::HttpClient::create(o).value()->request("GET", "/healthz")->status == 200);
  o.pinned_sha256 = std::string(64, '0');
  auto bad_pin = net::HttpClient::create(o).value()->request("GET", "/healthz");
  REQUIRE_FALSE(bad_pin.is_ok());
  CHECK(bad_pin.status().message().find("pinned") != std::string::npos);

  // Key pin: sha256/ + base64 of the SHA-256 of the public key (SPKI DER), computed with openssl; as the
  // second of a list whose first (a backup key) does not match.
  const std::string spki_pin_file = env.dir + "/spki.pin";
  REQUIRE(std::system(("openssl x509 -in " + env.dir + "/server.crt -pubkey -noout | openssl pkey -pubin -outform der | "
                       "openssl dgst -sha256 -binary | base64 > " + spki_pin_file).c_str()) == 0);
  std::string spki_b64 = read_file(spki_pin_file).value();
  while (!spki_b64.empty() && (spki_b64.back() == '\n' || spki_b64.back() == '\r')) spki_b64.pop_back();
  const std::string backup = "sha256/" + std::string(43, 'A') + "=";
  o.pinned_sha256 = backup + ", sha256/" + spki_b64;
  CHECK(net::HttpClient::create(o).value()->request("GET", "/healthz")->status == 200);
  o.pinned_sha256 = backup;
  auto bad_key = net::HttpClient::create(o).value()->request("GET", "/healthz");
  REQUIRE_FALSE(bad_key.is_ok());
  CHECK(bad_key.status().code() == StatusCode::kMismatch);
  CHECK(bad_key.status().message().find("key pin sha256/" + spki_b64) != std::string::npos);  // says what to pin
  o.pinned_sha256 = "sha256/not-base64";
  auto malformed = net::HttpClient::create(o);
  REQUIRE_FALSE(malformed.is_ok());
  CHECK(malformed.status().code() == StatusCode::kInvalidArgument);

  // Plain HTTP against the TLS port is not answered as HTTP.
  net::ClientOptions plain;
  plain.url = "http://127.0.0.1:" + std::to_string(server.port());
  plain.io_timeout_ms = 3000;
  auto p = net::HttpClient::create(plain).value()->request("GET", "/healthz");
  CHECK_FALSE((p.is_ok() && p->status == 200));
}

TEST_CASE("e2e: oversized bodies get 413, slow clients are cut off, SIGTERM finishes cleanly", "[server][e2e]") {
  Env env;
  ServerProcess server(POCKETLLM_SERVER_BIN, env.dir, {"--max-body-bytes", "2048", "--header-timeout", "0.5"});
  server.start();
  auto c = server.client();
  auto big = c->request("POST", "/v1/enrol", "{\"token\":\"" + std::string(4096, 'x') + "\"}");
  INFO((big.is_ok() ? std::string("ok") : big.status().to_string()));
  REQUIRE(big.is_ok());
  CHECK(big->status == 413);
  CHECK(c->request("GET", "/healthz")->status == 200);  // the client reconnects after the server closed

  // A client that connects and sends nothing is disconnected after the header timeout.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(server.port()));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const auto t0 = std::chrono::steady_clock::now();
  char buf[16];
  const ssize_t n = recv(fd, buf, sizeof buf, 0);
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  close(fd);
  CHECK(n <= 0);
  CHECK(waited < 3.0);  // closed by the server's 0.5 s timeout, not by our 5 s receive timeout
  CHECK(server.kill_now(SIGTERM) == 0);
}

TEST_CASE("e2e: kill -9 under load loses no acknowledged submission and no applied round", "[server][e2e][durability]") {
  Env env;
  ServerProcess server(POCKETLLM_SERVER_BIN, env.dir, {"--device-rate", "0"});
  server.start();
  auto admin = server.client();
  const std::string task = R"({"id":"k","base_model_id":")" + kModelId +
                           R"(","tau":4,"round_seconds":0.25,"min_submissions":1,"max_extensions":1000})";
  REQUIRE(admin->request("POST", "/v1/admin/tasks", task, kAdminToken)->status == 201);
  constexpr int kDevices = 6;
  std::vector<std::string> creds;
  for (int i = 0; i < kDevices; ++i) creds.push_back(enrol(*admin));
  admin.reset();

  struct Ack {
    std::string device;
    std::vector<double> coeffs;
  };
  std::mutex mu;
  std::map<uint64_t, std::vector<Ack>> acked;  // round -> acknowledged submissions
  std::vector<json> acked_logs;
  std::mt19937 rng(42);
  size_t total_acks = 0;
  for (int life = 0; life < 6; ++life) {
    if (life > 0) server.start();
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int d = 0; d < kDevices; ++d) {
      threads.emplace_back([&, d] {
        auto c = server.client(2000);
        const std::string id = creds[d].substr(0, creds[d].find('.'));
        while (!stop) {
          auto r = c->request("GET", "/v1/tasks/k/round", "", creds[d]);
          if (!r) break;
          const json round = json::parse(r->body);
          if (round["state"] != "open") continue;
          const uint64_t rid = round["round"];
          std::vector<double> coeffs;
          for (int k = 0; k < 4; ++k) coeffs.push_back(static_cast<double>(static_cast<float>(0.001 * (d + 1) * (k + 1) + 0.0001 * static_cast<double>(rid))));
          const json body = {{"coeffs", coeffs}, {"examples", d + 1}, {"base_version", round["base_version"]}};
          auto s = c->request("POST", "/v1/tasks/k/rounds/" + std::to_string(rid) + "/submissions", body.dump(), creds[d]);
          if (!s) break;
          if (s->status == 201 || s->status == 200) {
            std::lock_guard<std::mutex> lock(mu);
            acked[rid].push_back({id, coeffs});
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(300, 900)(rng)));
    {
      auto c = server.client(2000);
      auto log = c->request("GET", "/v1/tasks/k/log?since=0&limit=10000", "", creds[0]);
      if (log && log->status == 200) acked_logs.push_back(json::parse(log->body));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 200)(rng)));
    server.kill_now(SIGKILL);
    stop = true;
    for (auto& t : threads) t.join();
  }
  server.start();
  auto c = server.client();
  for (const auto& [rid, acks] : acked) {
    auto r = body_of(c->request("GET", "/v1/admin/tasks/k/rounds/" + std::to_string(rid), "", kAdminToken));
    std::map<std::string, json> stored;
    for (const auto& s : r["submission_list"]) stored[s["device"]] = s["coeffs"];
    for (const auto& a : acks) {
      INFO("round " << rid << " device " << a.device);
      REQUIRE(stored.count(a.device) == 1);
      for (size_t k = 0; k < a.coeffs.size(); ++k) CHECK(stored[a.device][k].get<double>() == a.coeffs[k]);
      ++total_acks;
    }
  }
  const json final_log = body_of(c->request("GET", "/v1/tasks/k/log?since=0&limit=10000", "", creds[0]));
  for (const auto& seen : acked_logs) {
    REQUIRE(final_log["entries"].size() >= seen["entries"].size());
    for (size_t i = 0; i < seen["entries"].size(); ++i) CHECK(final_log["entries"][i] == seen["entries"][i]);
  }
  // Enough happened for the check to mean something: submissions in many rounds, several applied.
  CHECK(total_acks >= 30);
  CHECK(acked.size() >= 6);
  CHECK(final_log["version"].get<uint64_t>() >= 16);
  // And the restarted server keeps running rounds.
  const std::string fresh = enrol(*c);  // every old device may have submitted to the open round already
  const json open_round = body_of(c->request("GET", "/v1/tasks/k/round", "", fresh));
  const uint64_t v = open_round["base_version"];
  auto last = c->request("POST", "/v1/tasks/k/rounds/" + std::to_string(open_round["round"].get<uint64_t>()) + "/submissions",
                         json{{"coeffs", {0.1, 0.1, 0.1, 0.1}}, {"examples", 1}, {"base_version", v}}.dump(), fresh);
  INFO(open_round.dump() << " -> " << last->body);
  REQUIRE(last->status == 201);
  json after;
  for (int i = 0; i < 100; ++i) {
    after = body_of(c->request("GET", "/v1/tasks/k", "", creds[1]));
    if (after["version"].get<uint64_t>() > v) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(after["version"].get<uint64_t>() == v + 4);
}
