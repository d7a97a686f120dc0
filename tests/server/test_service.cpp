// The JSON API in process: the whole protocol flow, every rejection case (and that it changes nothing),
// snapshots against the common/ replay, and restart from the store.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <random>

#include "pocketllm/common/safetensors.h"
#include "pocketllm/common/seeds.h"
#include "pocketllm/common/update_log.h"
#include "service_fixture.h"

using namespace pocketllm;
using namespace pocketllm::server;
using namespace pocketllm::server::test;
using nlohmann::json;

namespace {
const std::string kModelId(64, 'b');

std::string task_body(const std::string& id, int tau, const std::string& extra = "") {
  return R"({"id":")" + id + R"(","base_model_id":")" + kModelId + R"(","tau":)" + std::to_string(tau) +
         R"(,"round_seconds":10,"min_submissions":2,"max_extensions":1,"lr":0.01)" + extra + "}";
}

std::string submission(const std::vector<double>& coeffs, int examples, uint64_t base) {
  return json{{"coeffs", coeffs}, {"examples", examples}, {"base_version", base}, {"loss", {{"mean", 1.5}}}}.dump();
}
}  // namespace

TEST_CASE("service: a round from task creation to the applied log, as devices see it", "[server][service]") {
  Fixture f;
  REQUIRE(f.admin("POST", "/v1/admin/tasks", task_body("sst2", 3)).status == 201);
  const std::string a = f.enrol(), b = f.enrol();
  CHECK(a != b);

  auto round = f.json_of(f.call("GET", "/v1/tasks/sst2/round", "", a));
  CHECK(round["round"] == 1);
  CHECK(round["base_version"] == 0);
  REQUIRE(round["seeds"].size() == 3);
  CHECK(round["lr"].get<double>() == Approx(0.01));

  auto r1 = f.call("POST", "/v1/tasks/sst2/rounds/1/submissions", submission({1, 2, 3}, 1, 0), a);
  CHECK(r1.status == 201);
  auto again = f.call("POST", "/v1/tasks/sst2/rounds/1/submissions", submission({1, 2, 3}, 1, 0), a);
  CHECK(again.status == 200);
  CHECK(f.json_of(again)["duplicate"] == true);
  CHECK(f.call("POST", "/v1/tasks/sst2/rounds/1/submissions", submission({3, 2, 1}, 3, 0), b).status == 201);

  f.advance(9'999);
  CHECK(f.json_of(f.call("GET", "/v1/tasks/sst2", "", a))["version"] == 0);
  f.advance(1);
  auto task = f.json_of(f.call("GET", "/v1/tasks/sst2", "", a));
  CHECK(task["version"] == 3);
  CHECK(task["round"] == 2);
  CHECK_FALSE(task.contains("base_weights"));

  auto log = f.json_of(f.call("GET", "/v1/tasks/sst2/log?since=0", "", b));
  REQUIRE(log["entries"].size() == 3);
  CHECK(log["complete"] == true);
  for (int k = 0; k < 3; ++k) {
    CHECK(log["entries"][k]["seed"] == round["seeds"][k]);
    const double want = (1.0 * (k + 1) + 3.0 * (3 - k)) / 4.0;  // weighted by examples 1 and 3
    CHECK(log["entries"][k]["coeff"].get<double>() == Approx(want));
  }
  // Pagination and the binary form carry the same entries.
  auto page = f.json_of(f.call("GET", "/v1/tasks/sst2/log?since=1&limit=1", "", b));
  CHECK(page["entries"].size() == 1);
  CHECK(page["next"] == 2);
  CHECK(page["complete"] == false);
  CHECK(page["entries"][0] == log["entries"][1]);
  auto bin = f.call("GET", "/v1/tasks/sst2/log?since=0&format=binary", "", b);
  REQUIRE(bin.status == 200);
  auto parsed = UpdateLog::from_binary(bin.body);
  REQUIRE(parsed.is_ok());
  REQUIRE(parsed->size() == 3);
  CHECK(seed_to_hex(parsed.value()[2].seed) == log["entries"][2]["seed"].get<std::string>());
  CHECK(static_cast<double>(parsed.value()[2].coeff) == log["entries"][2]["coeff"].get<double>());

  auto old = f.json_of(f.call("GET", "/v1/tasks/sst2/rounds/1", "", a));
  CHECK(old["state"] == "applied");
  CHECK(old["applied_version"] == 3);
  auto detail = f.json_of(f.admin("GET", "/v1/admin/tasks/sst2/rounds/1"));
  CHECK(detail["submission_list"].size() == 2);
}

TEST_CASE("service: hostile and malformed requests get a precise 4xx and change nothing", "[server][service]") {
  Fixture f;
  REQUIRE(f.admin("POST", "/v1/admin/tasks", task_body("t", 2)).status == 201);
  const std::string dev = f.enrol(), other = f.enrol();
  const std::string url = "/v1/tasks/t/rounds/1/submissions";
  struct Case {
    const char* what;
    std::string body;
    std::string bearer;
    std::string target;
    int status;
    std::string code;
  };
  const std::vector<Case> cases = {
      {"no credential", submission({1, 1}, 1, 0), "", url, 401, "unauthenticated"},
      {"unknown credential", submission({1, 1}, 1, 0), "d_0000000000000000.00", url, 401, "unauthenticated"},
      {"a guessed secret", submission({1, 1}, 1, 0), dev.substr(0, dev.find('.')) + ".ffff", url, 401, "unauthenticated"},
      {"admin submitting", submission({1, 1}, 1, 0), kAdminToken, url, 403, "forbidden"},
      {"malformed JSON", "{\"coeffs\": [1, 1", dev, url, 400, "malformed_json"},
      {"not an object", "[1,2]", dev, url, 400, "malformed_json"},
      {"coeffs not an array", R"({"coeffs":"1,1","examples":1,"base_version":0})", dev, url, 400, "wrong_type"},
      {"a string scalar", R"({"coeffs":[1,"x"],"examples":1,"base_version":0})", dev, url, 400, "wrong_type"},
      {"negative examples", R"({"coeffs":[1,1],"examples":-3,"base_version":0})", dev, url, 400, "wrong_type"},
      {"missing base_version", R"({"coeffs":[1,1],"examples":1})", dev, url, 400, "wrong_type"},
      {"unknown field", R"({"coeffs":[1,1],"examples":1,"base_version":0,"text":"private"})", dev, url, 400, "unknown_field"},
      {"wrong scalar count", submission({1, 1, 1}, 1, 0), dev, url, 422, "wrong_count"},
      {"overflowing scalar", R"({"coeffs":[1e39,1],"examples":1,"base_version":0})", dev, url, 422, "non_finite"},
      {"a scalar beyond double (JSON parser refuses)", R"({"coeffs":[1e999,1],"examples":1,"base_version":0})", dev, url, 400, "malformed_json"},
      {"NaN literal", R"({"coeffs":[NaN,1],"examples":1,"base_version":0})", dev, url, 400, "malformed_json"},
      {"zero examples", submission({1, 1}, 0, 0), dev, url, 422, "bad_examples"},
      {"a loss that is not a number", R"({"coeffs":[1,1],"examples":1,"base_version":0,"loss":{"mean":"nan"}})", dev, url, 422, "non_finite"},
      {"unknown task", submission({1, 1}, 1, 0), dev, "/v1/tasks/nope/rounds/1/submissions", 404, "unknown_task"},
      {"unknown round", submission({1, 1}, 1, 0), dev, "/v1/tasks/t/rounds/9/submissions", 404, "unknown_round"},
      {"round not a number", submission({1, 1}, 1, 0), dev, "/v1/tasks/t/rounds/x/submissions", 400, "bad_round"},
      {"base ahead of the round", submission({1, 1}, 1, 5), dev, url, 409, "stale_base"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    auto r = f.call("POST", c.target, c.body, c.bearer);
    CHECK(r.status == c.status);
    CHECK(f.json_of(r)["error"]["code"] == c.code);
  }
  CHECK(f.json_of(f.admin("GET", "/v1/admin/tasks/t/rounds/1"))["submission_list"].empty());

  // A conflicting resubmission keeps the first one.
  REQUIRE(f.call("POST", url, submission({0.5, 0.25}, 2, 0), dev).status == 201);
  auto conflict = f.call("POST", url, submission({0.5, 0.5}, 2, 0), dev);
  CHECK(conflict.status == 409);
  CHECK(f.json_of(conflict)["error"]["code"] == "conflicting_resubmission");
  CHECK(f.json_of(f.admin("GET", "/v1/admin/tasks/t/rounds/1"))["submission_list"][0]["coeffs"][1].get<double>() == 0.25);

  // Devices cannot reach admin endpoints; unknown paths and methods are 404/405.
  CHECK(f.call("POST", "/v1/admin/tasks", task_body("u", 2), dev).status == 403);
  CHECK(f.call("POST", "/v1/admin/enrolment-tokens", "{}", dev).status == 403);
  CHECK(f.call("GET", "/v1/admin/tasks/t/rounds/1", "", dev).status == 403);
  CHECK(f.call("DELETE", "/v1/tasks/t", "", dev).status == 405);
  CHECK(f.call("GET", "/v2/tasks", "", dev).status == 404);
  CHECK(f.call("GET", "/v1/tasks/t/log?since=99", "", dev).status == 416);
  CHECK(f.call("GET", "/v1/tasks/t/log?since=-1", "", dev).status == 400);
  CHECK(f.call("GET", "/v1/tasks/t/log?since=%zz", "", dev).status == 400);

  // Bad tasks are refused field by field.
  CHECK(f.admin("POST", "/v1/admin/tasks", task_body("t", 2)).status == 409);
  auto bad_tau = f.admin("POST", "/v1/admin/tasks", task_body("u", 0));
  CHECK(bad_tau.status == 422);
  CHECK(f.json_of(bad_tau)["error"]["message"].get<std::string>().find("tau") != std::string::npos);
  CHECK(f.admin("POST", "/v1/admin/tasks", R"({"id":"u","base_model_id":"short"})").status == 422);
  CHECK(f.admin("POST", "/v1/admin/tasks", task_body("u", 2, R"(,"strategy":"max")")).status == 422);
  CHECK(f.admin("POST", "/v1/admin/tasks", task_body("u", 2, R"(,"lr":"big")")).status == 422);
  CHECK(f.admin("POST", "/v1/admin/tasks", task_body("u", 2, R"(,"surprise":1)")).status == 422);
  CHECK(f.admin("POST", "/v1/admin/tasks", task_body("../etc", 2)).status == 422);
  CHECK(f.admin("POST", "/v1/admin/tasks", task_body("u", 2, R"(,"base_weights":"/nonexistent.safetensors")")).status == 422);
  CHECK(f.json_of(f.call("GET", "/v1/tasks", "", dev))["tasks"].size() == 1);

  // Enrolment tokens are single-use (as issued) and expire.
  auto tok = f.json_of(f.admin("POST", "/v1/admin/enrolment-tokens", R"({"uses":1,"ttl_seconds":60})"))["token"].get<std::string>();
  CHECK(f.call("POST", "/v1/enrol", json{{"token", tok}}.dump()).status == 201);
  CHECK(f.call("POST", "/v1/enrol", json{{"token", tok}}.dump()).status == 401);
  auto tok2 = f.json_of(f.admin("POST", "/v1/admin/enrolment-tokens", R"({"uses":5,"ttl_seconds":1})"))["token"].get<std::string>();
  f.advance(1001);
  CHECK(f.call("POST", "/v1/enrol", json{{"token", tok2}}.dump()).status == 401);
  CHECK(f.call("POST", "/v1/enrol", R"({"token":42})").status == 400);
  CHECK(f.admin("POST", "/v1/admin/enrolment-tokens", R"({"uses":0})").status == 422);

  // Revocation stops a device at once.
  const std::string id = other.substr(0, other.find('.'));
  CHECK(f.admin("POST", "/v1/admin/devices/" + id + "/revoke").status == 200);
  auto revoked = f.call("GET", "/v1/tasks/t/round", "", other);
  CHECK(revoked.status == 403);
  CHECK(f.json_of(revoked)["error"]["code"] == "revoked");
  CHECK(f.admin("POST", "/v1/admin/devices/d_nope/revoke").status == 404);

  // The metrics count rejections by reason.
  const std::string metrics = f.call("GET", "/metrics").body;
  CHECK(metrics.find("pocketllm_submissions_total{result=\"wrong_count\"} 1") != std::string::npos);
  CHECK(metrics.find("pocketllm_submissions_total{result=\"accepted\"} 1") != std::string::npos);
  CHECK(metrics.find("pocketllm_devices{state=\"revoked\"} 1") != std::string::npos);
}

TEST_CASE("service: a device over its request rate gets 429 with Retry-After", "[server][service]") {
  Fixture f;
  f.rate = 1;
  f.burst = 3;
  f.open();
  REQUIRE(f.admin("POST", "/v1/admin/tasks", task_body("t", 2)).status == 201);
  const std::string dev = f.enrol();
  for (int i = 0; i < 3; ++i) CHECK(f.call("GET", "/v1/tasks/t/round", "", dev).status == 200);
  auto limited = f.call("GET", "/v1/tasks/t/round", "", dev);
  CHECK(limited.status == 429);
  bool retry_after = false;
  for (const auto& [k, v] : limited.headers) retry_after = retry_after || (k == "Retry-After" && v == "1");
  CHECK(retry_after);
  CHECK(f.admin("GET", "/v1/admin/tasks/t/rounds/1").status == 200);  // the admin is not limited
  f.advance(1000);
  CHECK(f.call("GET", "/v1/tasks/t/round", "", dev).status == 200);
}

TEST_CASE("service: snapshots are the base weights with the log replayed by common/, with their SHA-256", "[server][service]") {
  Fixture f;
  const std::string weights = f.dir + "/base.safetensors";
  std::vector<float> w1(37), w2(8);
  for (size_t i = 0; i < w1.size(); ++i) w1[i] = 0.01f * static_cast<float>(i);
  for (size_t i = 0; i < w2.size(); ++i) w2[i] = -1.0f + 0.1f * static_cast<float>(i);
  REQUIRE(write_safetensors(weights, {{"layers.0.attn.q.weight", DType::kF32, {37}, w1.data()}, {"norm.weight", DType::kF32, {2, 4}, w2.data()}}).is_ok());
  REQUIRE(f.admin("POST", "/v1/admin/tasks", task_body("t", 2, R"(,"base_weights":")" + weights + "\"")).status == 201);
  const std::string a = f.enrol(), b = f.enrol();
  CHECK(f.json_of(f.call("GET", "/v1/tasks/t", "", a))["snapshots"] == true);
  for (int round = 1; round <= 3; ++round) {
    const uint64_t base = static_cast<uint64_t>(round - 1) * 2;
    REQUIRE(f.call("POST", "/v1/tasks/t/rounds/" + std::to_string(round) + "/submissions", submission({0.5 * round, -0.25}, 1, base), a).status == 201);
    REQUIRE(f.call("POST", "/v1/tasks/t/rounds/" + std::to_string(round) + "/submissions", submission({0.1, 0.3 * round}, 2, base), b).status == 201);
    f.advance(10'000);
  }
  auto log = UpdateLog::from_binary(f.call("GET", "/v1/tasks/t/log?format=binary", "", a).body);
  REQUIRE(log.is_ok());
  REQUIRE(log->size() == 6);
  auto check_version = [&](uint64_t version) {
    INFO("version " << version);
    auto snap = f.call("GET", "/v1/tasks/t/snapshot?version=" + std::to_string(version), "", a);
    REQUIRE(snap.status == 200);
    std::map<std::string, std::string> headers(snap.headers.begin(), snap.headers.end());
    CHECK(headers["X-Pocketllm-Sha256"] == to_hex(sha256(snap.body)));
    CHECK(headers["X-Pocketllm-Version"] == std::to_string(version));
    auto file = SafetensorsFile::from_bytes(snap.body, "snapshot");
    REQUIRE(file.is_ok());
    std::vector<float> e1 = w1, e2 = w2;
    replay_log(nullptr, Distribution::kRademacher, log->slice(0, version), {{"layers.0.attn.q.weight", e1.data(), e1.size()}, {"norm.weight", e2.data(), e2.size()}});
    const float* g1 = file->f32_view(*file->find("layers.0.attn.q.weight"));
    const float* g2 = file->f32_view(*file->find("norm.weight"));
    REQUIRE(g1 != nullptr);
    REQUIRE(g2 != nullptr);
    CHECK(std::memcmp(g1, e1.data(), e1.size() * 4) == 0);
    CHECK(std::memcmp(g2, e2.data(), e2.size() * 4) == 0);
    CHECK(file->metadata().at("version") == std::to_string(version));
  };
  check_version(6);
  check_version(2);  // an older version, materialised aside
  check_version(6);  // the cached head is still right
  CHECK(f.call("GET", "/v1/tasks/t/snapshot?version=7", "", a).status == 416);
  REQUIRE(f.admin("POST", "/v1/admin/tasks", task_body("plain", 2)).status == 201);
  CHECK(f.call("GET", "/v1/tasks/plain/snapshot", "", a).status == 404);
}

TEST_CASE("service: a restart restores tasks, open rounds, submissions, devices and the log from the store", "[server][service]") {
  Fixture f;
  REQUIRE(f.admin("POST", "/v1/admin/tasks", task_body("t", 2)).status == 201);
  const std::string a = f.enrol(), b = f.enrol(), c = f.enrol();
  REQUIRE(f.call("POST", "/v1/tasks/t/rounds/1/submissions", submission({1, 2}, 1, 0), a).status == 201);
  REQUIRE(f.call("POST", "/v1/tasks/t/rounds/1/submissions", submission({3, 4}, 1, 0), b).status == 201);
  f.advance(10'000);
  REQUIRE(f.call("POST", "/v1/tasks/t/rounds/2/submissions", submission({5, 6}, 1, 2), a).status == 201);
  REQUIRE(f.admin("POST", "/v1/admin/devices/" + c.substr(0, c.find('.')) + "/revoke").status == 200);
  const std::string log_before = f.call("GET", "/v1/tasks/t/log", "", a).body;
  const auto round2 = f.json_of(f.call("GET", "/v1/tasks/t/round", "", a));

  f.open();  // a new process on the same store
  CHECK(f.call("GET", "/v1/tasks/t/log", "", a).body == log_before);
  auto r = f.json_of(f.call("GET", "/v1/tasks/t/round", "", b));
  CHECK(r["round"] == 2);
  CHECK(r["seeds"] == round2["seeds"]);
  CHECK(r["deadline_ms"] == round2["deadline_ms"]);
  CHECK(r["submissions"] == 1);
  CHECK(f.call("POST", "/v1/tasks/t/rounds/2/submissions", submission({5, 6}, 1, 2), a).status == 200);  // still a duplicate
  CHECK(f.call("GET", "/v1/tasks/t/round", "", c).status == 403);  // still revoked
  REQUIRE(f.call("POST", "/v1/tasks/t/rounds/2/submissions", submission({7, 8}, 1, 2), b).status == 201);
  f.advance(10'000);
  auto log = f.json_of(f.call("GET", "/v1/tasks/t/log", "", a));
  REQUIRE(log["entries"].size() == 4);
  CHECK(log["entries"][2]["coeff"].get<double>() == Approx(6.0));
  CHECK(log["entries"][3]["coeff"].get<double>() == Approx(7.0));
}

TEST_CASE("service: a task's seed key fixes its round seeds (step_seed of docs/training.md)", "[server][service]") {
  Fixture f;
  REQUIRE(f.admin("POST", "/v1/admin/tasks", task_body("k", 3, R"(,"seed_key":"00000000000000ff")")).status == 201);
  const std::string dev = f.enrol();
  auto round = f.json_of(f.call("GET", "/v1/tasks/k/round", "", dev));
  for (uint32_t k = 0; k < 3; ++k) CHECK(round["seeds"][k] == seed_to_hex(step_seed(0xff, 1, k)));
  CHECK(f.admin("POST", "/v1/admin/tasks", task_body("k2", 3, R"(,"seed_key":"xyz")")).status == 422);
}

TEST_CASE("service: the admin can close a round now: it applies with enough submissions", "[server][service]") {
  Fixture f;
  REQUIRE(f.admin("POST", "/v1/admin/tasks", task_body("c", 2)).status == 201);
  const std::string a = f.enrol(), b = f.enrol();
  REQUIRE(f.call("POST", "/v1/tasks/c/rounds/1/submissions", submission({1, 1}, 1, 0), a).status == 201);
  CHECK(f.call("POST", "/v1/admin/tasks/c/rounds/1/close", "", a).status == 403);
  auto one = f.json_of(f.admin("POST", "/v1/admin/tasks/c/rounds/1/close"));
  CHECK(one["state"] == "abandoned");  // min_submissions 2: never applied from one device
  REQUIRE(f.call("POST", "/v1/tasks/c/rounds/2/submissions", submission({1, 1}, 1, 0), a).status == 201);
  REQUIRE(f.call("POST", "/v1/tasks/c/rounds/2/submissions", submission({3, 3}, 1, 0), b).status == 201);
  auto two = f.json_of(f.admin("POST", "/v1/admin/tasks/c/rounds/2/close"));
  CHECK(two["state"] == "applied");
  CHECK(f.json_of(f.call("GET", "/v1/tasks/c", "", a))["version"] == 2);
  CHECK(f.admin("POST", "/v1/admin/tasks/c/rounds/2/close").status == 409);
  CHECK(f.admin("POST", "/v1/admin/tasks/c/rounds/9/close").status == 404);
}

TEST_CASE("service: thousands of randomly corrupted requests get 2xx/4xx, never a 5xx or a crash", "[server][service]") {
  Fixture f;
  REQUIRE(f.admin("POST", "/v1/admin/tasks", task_body("fz", 3)).status == 201);
  const std::string dev = f.enrol();
  const std::vector<std::string> bodies = {submission({1, 2, 3}, 1, 0), task_body("fz2", 2), R"({"uses":3,"ttl_seconds":10})",
                                           R"({"token":"et_00"})"};
  const std::vector<std::string> targets = {"/v1/tasks/fz/rounds/1/submissions", "/v1/admin/tasks", "/v1/admin/enrolment-tokens",
                                            "/v1/enrol", "/v1/tasks/fz/log?since=0&limit=5", "/v1/tasks/fz/snapshot?version=0",
                                            "/v1/admin/tasks/fz/rounds/1/close"};
  std::mt19937 rng(1234);
  const std::string alphabet = "{}[]\":,0123456789.eE+-nulltruefalse\\ \x01\xff\xc3\xa9" "abcxyz/?&=%";
  int count_4xx = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string body = bodies[rng() % bodies.size()], target = targets[rng() % targets.size()];
    const int edits = 1 + static_cast<int>(rng() % 6);
    for (int e = 0; e < edits; ++e) {
      std::string& victim = (rng() % 4 == 0) ? target : body;
      const size_t pos = victim.empty() ? 0 : rng() % victim.size();
      switch (rng() % 3) {
        case 0: if (!victim.empty()) victim.erase(pos, 1 + rng() % 4); break;
        case 1: victim.insert(pos, 1, alphabet[rng() % alphabet.size()]); break;
        default: if (!victim.empty()) victim[pos] = alphabet[rng() % alphabet.size()]; break;
      }
    }
    const std::string bearer = (rng() % 3 == 0) ? kAdminToken : dev;
    HttpResponse r = f.call(rng() % 5 == 0 ? "GET" : "POST", target, body, bearer);
    INFO(target << " " << body);
    REQUIRE(r.status >= 200);
    REQUIRE(r.status < 500);
    count_4xx += r.status >= 400;
  }
  CHECK(count_4xx > 1000);  // the corruption did reach the validators
  f.advance(10000);  // refill the device's rate-limit bucket
  CHECK(f.call("GET", "/v1/tasks/fz", "", dev).status == 200);
}
