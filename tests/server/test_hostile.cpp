// Hostile requests through the in-process service: each was a crash or a gap found by the red-team run
// (issue 14); each must be refused cleanly with state unchanged.
#include <catch2/catch.hpp>

#include "service_fixture.h"

using namespace pocketllm;
using namespace pocketllm::server;
using namespace pocketllm::server::test;
using nlohmann::json;

namespace {
std::string nested(const std::string& open, const std::string& close, const std::string& inner, int depth) {
  std::string s;
  s.reserve((open.size() + close.size()) * depth + inner.size());
  for (int i = 0; i < depth; ++i) s += open;
  s += inner;
  for (int i = 0; i < depth; ++i) s += close;
  return s;
}
const std::string kModelId(64, 'e');
}  // namespace

TEST_CASE("hostile: a 100000-deep JSON body is refused with 400, never a crash", "[server][hostile]") {
  Fixture f;
  const std::string device = nested("{\"a\":", "}", "1", 100000);
  auto r = f.admin("POST", "/v1/admin/tasks", R"({"id":"deep","base_model_id":")" + kModelId + R"(","device":)" + device + "}");
  CHECK(r.status == 400);
  CHECK(f.json_of(r)["error"]["code"] == "malformed_json");
  const std::string cred = f.enrol();
  REQUIRE(f.admin("POST", "/v1/admin/tasks", R"({"id":"t","base_model_id":")" + kModelId + R"(","tau":1})").status == 201);
  auto s = f.call("POST", "/v1/tasks/t/rounds/1/submissions", nested("[", "]", "0", 100000), cred);
  CHECK(s.status == 400);
  auto e = f.call("POST", "/v1/enrol", nested("{\"t\":", "}", "\"x\"", 100000));
  CHECK(e.status == 400);
  // Nothing was created: the task list holds only t.
  CHECK(f.json_of(f.admin("GET", "/v1/tasks"))["tasks"].size() == 1);
}

namespace {
HttpResponse from(Fixture& f, const std::string& address, const std::string& method, const std::string& target,
                  const std::string& bearer = "", const std::string& body = "") {
  HttpRequest r;
  r.method = method;
  r.target = target;
  r.body = body;
  r.remote_address = address;
  if (!bearer.empty()) r.authorization = "Bearer " + bearer;
  return f.svc->handle(r);
}
}  // namespace

TEST_CASE("hostile: task ids cannot be path tricks, and an encoded slash never reroutes", "[server][hostile]") {
  Fixture f;
  for (const char* id : {"..", ".", ".hidden", "-x"}) {
    auto r = f.admin("POST", "/v1/admin/tasks", R"({"id":")" + std::string(id) + R"(","base_model_id":")" + kModelId + "\"}");
    CHECK(r.status == 422);
  }
  REQUIRE(f.admin("POST", "/v1/admin/tasks", R"({"id":"t","base_model_id":")" + kModelId + "\"}").status == 201);
  CHECK(f.admin("GET", "/v1/tasks/t/round").status == 200);
  auto encoded = f.admin("GET", "/v1/tasks/t%2Fround");  // one segment "t/round": no such task, not t's round
  CHECK(encoded.status == 404);
  CHECK(f.json_of(encoded)["error"]["code"] == "unknown_task");
}

TEST_CASE("hostile: unknown methods get 405, unknown fields and every 401 are answered properly", "[server][hostile]") {
  Fixture f;
  CHECK(f.admin("DELETE", "/v1/tasks").status == 405);
  CHECK(f.admin("BREW", "/v1/admin/tasks").status == 405);
  CHECK(f.admin("GET", "/v1/nothing-here").status == 404);
  auto extra = f.admin("POST", "/v1/admin/enrolment-tokens", R"({"uses":2,"admin":true})");
  CHECK(extra.status == 400);
  CHECK(f.json_of(extra)["error"]["code"] == "unknown_field");
  auto bad_token = f.call("POST", "/v1/enrol", R"({"token":"et_000"})");
  REQUIRE(bad_token.status == 401);
  bool named = false;
  for (const auto& [k, v] : bad_token.headers) named = named || (k == "WWW-Authenticate" && v == "Bearer");
  CHECK(named);
}

TEST_CASE("hostile: failed credentials are limited per address: other addresses are unaffected", "[server][hostile]") {
  Fixture f;
  const std::string cred = f.enrol();
  int refused = 0, limited = 0;
  for (int i = 0; i < 40; ++i) {
    const int s = from(f, "203.0.113.7", "GET", "/v1/tasks", "d_guess.0000").status;
    refused += s == 401;
    limited += s == 429;
  }
  CHECK(refused == 20);  // the burst
  CHECK(limited == 20);
  CHECK(from(f, "203.0.113.7", "GET", "/v1/tasks", cred).status == 429);  // the address is cooling down
  CHECK(from(f, "198.51.100.1", "GET", "/v1/tasks", cred).status == 200);
  CHECK(from(f, "198.51.100.1", "POST", "/v1/enrol", "", R"({"token":"et_1"})").status == 401);
  f.advance(30'000);  // refills at one failure per second
  CHECK(from(f, "203.0.113.7", "GET", "/v1/tasks", cred).status == 200);
}

TEST_CASE("hostile: /metrics is served to loopback and the admin by default", "[server][hostile]") {
  Fixture f;
  CHECK(from(f, "127.0.0.1", "GET", "/metrics").status == 200);
  CHECK(from(f, "::1", "GET", "/metrics").status == 200);
  CHECK(from(f, "203.0.113.7", "GET", "/metrics").status == 403);
  CHECK(from(f, "203.0.113.7", "GET", "/metrics", kAdminToken).status == 200);
}

TEST_CASE("hostile: revoking a device drops its submission from the open round, also after a restart", "[server][hostile]") {
  Fixture f;
  REQUIRE(f.admin("POST", "/v1/admin/tasks", R"({"id":"r","base_model_id":")" + kModelId +
                                              R"(","tau":1,"min_submissions":1,"round_seconds":60})").status == 201);
  const std::string good = f.enrol(), bad = f.enrol();
  REQUIRE(f.call("POST", "/v1/tasks/r/rounds/1/submissions", R"({"coeffs":[0.5],"examples":1,"base_version":0})", good).status == 201);
  REQUIRE(f.call("POST", "/v1/tasks/r/rounds/1/submissions", R"({"coeffs":[1e30],"examples":1,"base_version":0})", bad).status == 201);
  const std::string bad_id = bad.substr(0, bad.find('.'));
  auto revoked = f.admin("POST", "/v1/admin/devices/" + bad_id + "/revoke");
  REQUIRE(revoked.status == 200);
  CHECK(f.json_of(revoked)["dropped_submissions"] == 1);
  f.open();  // a restart reloads the store: the dropped submission stays dropped
  auto detail = f.json_of(f.admin("GET", "/v1/admin/tasks/r/rounds/1"));
  REQUIRE(detail["submission_list"].size() == 1);
  CHECK(detail["submission_list"][0]["device"] != bad_id);
  REQUIRE(f.admin("POST", "/v1/admin/tasks/r/rounds/1/close").status == 200);
  auto log = f.json_of(f.admin("GET", "/v1/tasks/r/log?since=0"));
  REQUIRE(log["entries"].size() == 1);
  CHECK(log["entries"][0]["coeff"].get<double>() == Approx(0.5));  // the revoked device's 1e30 is not in it
}

namespace {
// A task of one seed per round with the server's defaults (but a long deadline), and n enrolled devices.
struct PoisonWorld {
  Fixture f;
  std::vector<std::string> creds;
  explicit PoisonWorld(const std::string& extra = "", int n = 6) {
    REQUIRE(f.admin("POST", "/v1/admin/tasks", R"({"id":"p","base_model_id":")" + kModelId + R"(","tau":1,"batch_size":8,"round_seconds":60)" +
                                                   extra + "}").status == 201);
    for (int i = 0; i < n; ++i) creds.push_back(f.enrol());
  }
  int submit(int device, double coeff, uint64_t examples) {
    json body = {{"coeffs", {coeff}}, {"examples", examples}, {"base_version", 0}};
    return f.call("POST", "/v1/tasks/p/rounds/1/submissions", body.dump(), creds.at(static_cast<size_t>(device))).status;
  }
  json close() {
    f.admin("POST", "/v1/admin/tasks/p/rounds/1/close");
    return f.json_of(f.admin("GET", "/v1/tasks/p/log?since=0"))["entries"];
  }
};
const double kFltMax = 3.4028234663852886e38;
}  // namespace

TEST_CASE("poisoning: with default settings one FLT_MAX device among five honest ones cannot move the entry far", "[server][hostile]") {
  for (const char* strategy : {"weighted_mean", "median", "trimmed_mean"}) {
    PoisonWorld w(std::string(R"(,"strategy":")") + strategy + "\"");
    const double honest[] = {0.010, 0.012, 0.009, 0.011, 0.010};
    for (int i = 0; i < 5; ++i) REQUIRE(w.submit(i, honest[i], 8) == 201);
    REQUIRE(w.submit(5, kFltMax, uint64_t{1} << 40) == 201);  // the attacker: huge value, huge weight
    auto entries = w.close();
    REQUIRE(entries.size() == 1);
    const double c = entries[0]["coeff"].get<double>();
    INFO(strategy << ": " << c);
    CHECK(std::isfinite(c));
    CHECK(std::fabs(c) < 0.02);  // was 3.4e38 (weighted mean, no clip, 2^40 examples)
  }
}

TEST_CASE("poisoning: a lone attacker cannot make a round, nor own a median with one honest device", "[server][hostile]") {
  PoisonWorld w(R"(,"strategy":"median","max_extensions":0)");
  REQUIRE(w.submit(0, 0.01, 8) == 201);
  REQUIRE(w.submit(1, 1e6, 8) == 201);
  auto entries = w.close();
  CHECK(entries.empty());  // two submissions are below the default minimum of 3: abandoned, nothing applied
  auto round = w.f.json_of(w.f.admin("GET", "/v1/admin/tasks/p/rounds/1"));
  CHECK(round["state"] == "abandoned");
}

TEST_CASE("poisoning: a round whose aggregate is absurd is abandoned, never applied", "[server][hostile]") {
  PoisonWorld w(R"(,"max_extensions":0)");
  for (int i = 0; i < 4; ++i) REQUIRE(w.submit(i, 1e6, 8) == 201);  // an attacker majority
  CHECK(w.close().empty());
  CHECK(w.f.json_of(w.f.admin("GET", "/v1/tasks/p"))["version"] == 0);
}

TEST_CASE("poisoning: enrolment tokens cap their devices per round (Sybil limit)", "[server][hostile]") {
  PoisonWorld w(R"(,"max_per_token":2)", 0);
  auto token = w.f.json_of(w.f.admin("POST", "/v1/admin/enrolment-tokens", R"({"uses":3})"))["token"].get<std::string>();
  for (int i = 0; i < 3; ++i)
    w.creds.push_back(w.f.json_of(w.f.call("POST", "/v1/enrol", json{{"token", token}}.dump()))["credential"].get<std::string>());
  w.creds.push_back(w.f.enrol());  // another token
  CHECK(w.submit(0, 0.01, 8) == 201);
  CHECK(w.submit(1, 0.01, 8) == 201);
  CHECK(w.submit(2, 0.01, 8) == 403);  // a third device of the same token in this round
  CHECK(w.submit(3, 0.01, 8) == 201);
  CHECK(w.submit(0, 0.01, 8) == 200);  // the same resubmission is still a duplicate, not a cap hit
}

TEST_CASE("memory: only the open round's submissions stay in RAM: closed rounds are served from the store", "[server][hostile]") {
  PoisonWorld w(R"(,"min_submissions":1,"goal_submissions":3)", 3);
  for (int round = 1; round <= 3; ++round)
    for (int d = 0; d < 3; ++d) {
      json body = {{"coeffs", {0.01 * (d + 1)}}, {"examples", 8}, {"base_version", round - 1}};
      REQUIRE(w.f.call("POST", "/v1/tasks/p/rounds/" + std::to_string(round) + "/submissions", body.dump(), w.creds[d]).status == 201);
      w.f.advance(1);  // the tick closes a round once its three submissions are durable
    }
  w.f.advance(200);
  CHECK(w.f.json_of(w.f.admin("GET", "/v1/tasks/p"))["version"] == 3);
  auto old = w.f.json_of(w.f.admin("GET", "/v1/admin/tasks/p/rounds/2"));
  CHECK(old["submissions"] == 3);
  CHECK(old["submission_list"].size() == 3);  // read back from the store
  w.f.svc.reset();
  auto store = Store::open(w.f.store.location, Durability::kNormal);
  REQUIRE(store.is_ok());
  auto rounds = store.value()->load_rounds("p");
  REQUIRE(rounds.is_ok());
  REQUIRE(rounds->size() == 4);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(rounds.value()[i].submissions.empty());  // a restart loads closed rounds' counts, not their rows
    CHECK(rounds.value()[i].submission_count() == 3);
  }
  CHECK(rounds.value()[3].state == RoundState::kOpen);
}

#include "pocketllm/common/safetensors.h"
#include "pocketllm/common/tensor_ops.h"
#include "pocketllm/common/update_log.h"

TEST_CASE("snapshots: any old version rebuilt from stored checkpoints equals the replay from the base", "[server][hostile]") {
  Fixture f;
  f.checkpoint_every = 4;
  f.open();
  std::vector<float> w(1000);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.001f * static_cast<float>(i);
  REQUIRE(write_safetensors(f.dir + "/base.safetensors", {{"w", DType::kF32, {1000}, w.data()}}).is_ok());
  REQUIRE(f.admin("POST", "/v1/admin/tasks", R"({"id":"s","base_model_id":")" + kModelId + R"(","tau":3,"min_submissions":1,"goal_submissions":1,)" +
                                              R"("base_weights":")" + f.dir + "/base.safetensors\"}").status == 201);
  const std::string cred = f.enrol();
  for (int r = 1; r <= 5; ++r) {  // 15 log entries
    json body = {{"coeffs", {0.01 * r, -0.02, 0.005}}, {"examples", 1}, {"base_version", 3 * (r - 1)}};
    REQUIRE(f.call("POST", "/v1/tasks/s/rounds/" + std::to_string(r) + "/submissions", body.dump(), cred).status == 201);
    f.advance(1);
    f.advance(1);
  }
  auto log = UpdateLog::from_binary(f.call("GET", "/v1/tasks/s/log?since=0&format=binary", "", cred).body);
  REQUIRE(log.is_ok());
  REQUIRE(log->size() == 15);
  CHECK(f.call("GET", "/v1/tasks/s/snapshot", "", cred).status == 200);  // the head: checkpoints 4, 8, 12 on the way
  for (uint64_t v : {13u, 2u, 9u, 4u, 0u, 15u, 7u}) {
    auto r = f.call("GET", "/v1/tasks/s/snapshot?version=" + std::to_string(v), "", cred);
    REQUIRE(r.status == 200);
    auto file = SafetensorsFile::from_bytes(r.body, "snapshot");
    REQUIRE(file.is_ok());
    std::vector<float> got(1000), want = w;
    REQUIRE(file->read_f32(*file->find("w"), 0, 1000, got.data()).is_ok());
    NamedTensor t{"w", want.data(), want.size()};
    replay_entries(nullptr, Distribution::kRademacher, log->entries().data(), v, {t});
    INFO("version " << v);
    CHECK(std::memcmp(got.data(), want.data(), 4000) == 0);
  }
  f.svc.reset();
  auto store = Store::open(f.store.location, Durability::kNormal);
  REQUIRE(store.is_ok());
  auto cp = store.value()->checkpoint_at_or_before("s", 11);
  REQUIRE(cp.is_ok());
  CHECK(cp->first == 8);  // a rebuild of version 11 replays 3 entries, not 11
}

#include <condition_variable>
#include <thread>

TEST_CASE("snapshots: rebuilt on the snapshot thread, never the caller's: a full queue answers 503 busy at once", "[server][hostile]") {
  Fixture f;
  f.snapshot_queue = 1;
  f.open();
  std::vector<float> w(1 << 20, 0.5f);  // 4 MiB of trainables: each rebuild takes a while
  REQUIRE(write_safetensors(f.dir + "/base.safetensors", {{"w", DType::kF32, {1 << 20}, w.data()}}).is_ok());
  REQUIRE(f.admin("POST", "/v1/admin/tasks", R"({"id":"s","base_model_id":")" + kModelId + R"(","tau":64,"min_submissions":1,"goal_submissions":1,)" +
                                              R"("base_weights":")" + f.dir + "/base.safetensors\"}").status == 201);
  const std::string cred = f.enrol();
  for (int r = 1; r <= 4; ++r) {
    json body = {{"coeffs", std::vector<double>(64, 1e-3)}, {"examples", 1}, {"base_version", 64 * (r - 1)}};
    REQUIRE(f.call("POST", "/v1/tasks/s/rounds/" + std::to_string(r) + "/submissions", body.dump(), cred).status == 201);
    f.advance(1);
    f.advance(1);
  }
  std::mutex m;
  std::condition_variable cv;
  int answered = 0, ok = 0, busy = 0, on_caller = 0;
  const auto caller = std::this_thread::get_id();
  for (int i = 0; i < 12; ++i) {  // old versions, all at once
    HttpRequest r;
    r.method = "GET";
    r.target = "/v1/tasks/s/snapshot?version=" + std::to_string(10 + 19 * i);
    r.authorization = "Bearer " + cred;
    f.svc->handle_async(r, [&](HttpResponse resp) {
      std::lock_guard<std::mutex> lock(m);
      ok += resp.status == 200;
      busy += resp.status == 503;
      on_caller += resp.status == 200 && std::this_thread::get_id() == caller;
      ++answered;
      cv.notify_all();
    });
  }
  std::unique_lock<std::mutex> lock(m);
  cv.wait(lock, [&] { return answered == 12; });
  CHECK(on_caller == 0);  // before: every rebuild ran on the request's (network) thread
  CHECK(ok >= 1);
  CHECK(busy >= 1);       // the queue holds one job: the rest were told to retry, immediately
  CHECK(ok + busy == 12);
}
