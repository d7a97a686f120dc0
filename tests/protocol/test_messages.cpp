// The wire types: what the server writes, a device reads back field for field; what a device sends, the
// server validates with the protocol's codes.
#include <catch2/catch.hpp>

#include <cfloat>

#include "pocketllm/protocol/messages.h"

using namespace pocketllm;
using namespace pocketllm::protocol;
using nlohmann::json;

TEST_CASE("protocol: every error code has one name and one status, and names round-trip", "[protocol]") {
  for (int i = 0; i < static_cast<int>(ErrorCode::kUnknown); ++i) {
    const auto code = static_cast<ErrorCode>(i);
    const std::string name = error_code_name(code);
    CHECK(name != "unknown");
    CHECK(parse_error_code(name) == code);
    CHECK(http_status(code) >= 400);
  }
  CHECK(parse_error_code("from_a_newer_server") == ErrorCode::kUnknown);
  CHECK(http_status(ErrorCode::kRoundClosed) == 409);
  CHECK(http_status(ErrorCode::kNonFinite) == 422);
}

TEST_CASE("protocol: a round written by the server is read back by a device", "[protocol]") {
  RoundInfo r;
  r.task = "t1";
  r.round = 7;
  r.base_version = 48;
  r.state = RoundState::kApplied;
  r.seeds = {0, 0xffffffffffffffffull, 0x00c0ffee12345678ull};
  r.lr = 1e-4;
  r.eps = 1e-3;
  r.batch_size = 16;
  r.dist = Distribution::kGaussian;
  r.trainable = "norms";
  r.deadline_ms = 123456789;
  r.applied_version = 51;
  const json j = to_json(r);
  CHECK(j["seeds"][1] == "ffffffffffffffff");  // seeds as 16 hex digits, never JSON numbers
  auto back = parse_round_info(j.dump());
  REQUIRE(back.is_ok());
  CHECK(back->seeds == r.seeds);
  CHECK(back->state == RoundState::kApplied);
  CHECK(back->dist == Distribution::kGaussian);
  CHECK(back->applied_version == std::optional<uint64_t>(51));
  CHECK(back->round == 7);
  CHECK(back->base_version == 48);
  json broken = j;
  broken["seeds"][0] = "not-a-seed";
  CHECK(parse_round_info(broken.dump()).status().code() == StatusCode::kCorrupt);
  broken = j;
  broken.erase("base_version");
  auto missing = parse_round_info(broken.dump());
  REQUIRE_FALSE(missing.is_ok());
  CHECK(missing.status().message().find("base_version") != std::string::npos);
  CHECK_FALSE(parse_round_info("[1,2]").is_ok());
}

TEST_CASE("protocol: the task's training spec and status round-trip", "[protocol]") {
  TaskInfo t;
  t.id = "task";
  t.base_model_id = std::string(64, 'a');
  t.trainable = "*norm*";
  t.lr = 2e-4;
  t.eps = 1e-3;
  t.batch_size = 8;
  t.tau = 4;
  t.device = {{"task", "classify"}};
  t.version = 12;
  t.round = 4;
  t.snapshots = true;
  json j = json::object();
  write_training_spec(t, &j);
  write_task_status(t, &j);
  auto back = parse_task_info(j.dump());
  REQUIRE(back.is_ok());
  CHECK(back->trainable == "*norm*");
  CHECK(back->tau == 4);
  CHECK(back->version == 12);
  CHECK(back->snapshots);
  CHECK(back->device["task"] == "classify");
  j["device"] = "not an object";
  CHECK_FALSE(parse_task_info(j.dump()).is_ok());
}

TEST_CASE("protocol: submissions are validated with the protocol's codes", "[protocol]") {
  SubmissionRequest s;
  s.coeffs = {0.5f, -FLT_MAX, 1e-30f};
  s.examples = 32;
  s.base_version = 9;
  s.loss["mean"] = 2.5;
  SubmissionRequest back;
  REQUIRE_FALSE(parse_submission(to_json(s), &back));
  CHECK(back.coeffs == s.coeffs);  // float32 values survive the JSON round trip exactly
  CHECK(back.loss.at("mean") == 2.5);
  auto code_of = [](const std::string& body) {
    SubmissionRequest out;
    auto r = parse_submission(json::parse(body), &out);
    return r ? r->code : ErrorCode::kUnknown;
  };
  CHECK(code_of(R"({"coeffs":[1],"examples":1,"base_version":0})") == ErrorCode::kUnknown);  // valid
  CHECK(code_of(R"({"coeffs":[1],"examples":1,"base_version":0,"extra":1})") == ErrorCode::kUnknownField);
  CHECK(code_of(R"({"coeffs":"x","examples":1,"base_version":0})") == ErrorCode::kWrongType);
  CHECK(code_of(R"({"coeffs":[1],"examples":-1,"base_version":0})") == ErrorCode::kWrongType);
  CHECK(code_of(R"({"coeffs":[1e39],"examples":1,"base_version":0})") == ErrorCode::kNonFinite);
  CHECK(code_of(R"({"coeffs":[1],"examples":0,"base_version":0})") == ErrorCode::kBadExamples);
  CHECK(code_of(R"({"coeffs":[1],"examples":1099511627777,"base_version":0})") == ErrorCode::kBadExamples);
  CHECK(code_of(R"({"coeffs":[1],"examples":1,"base_version":0,"loss":{"mean":"x"}})") == ErrorCode::kNonFinite);
  json many = {{"coeffs", std::vector<double>(kMaxScalars + 1, 0.0)}, {"examples", 1}, {"base_version", 0}};
  CHECK(code_of(many.dump()) == ErrorCode::kWrongCount);
}

TEST_CASE("protocol: error replies carry the typed code and the 409 fields", "[protocol]") {
  ErrorReply e;
  e.code = ErrorCode::kStaleBase;
  e.message = "behind";
  e.current_round = 5;
  e.version = 40;
  auto back = parse_error_reply(to_json(e).dump());
  REQUIRE(back);
  CHECK(back->code == ErrorCode::kStaleBase);
  CHECK(back->code_name == "stale_base");
  CHECK(back->current_round == std::optional<uint64_t>(5));
  CHECK(back->version == std::optional<uint64_t>(40));
  CHECK_FALSE(parse_error_reply(R"({"accepted":true})"));
  CHECK_FALSE(parse_error_reply("not json"));
  CHECK(submissions_path("t", 3) == "/v1/tasks/t/rounds/3/submissions");
  CHECK(log_path("t", 10, 100, true) == "/v1/tasks/t/log?format=binary&limit=100&since=10");
}

TEST_CASE("protocol: numbers out of a field's range are refused, not converted (found by fuzz_protocol)", "[protocol]") {
  // Was undefined behaviour: 4.4e95 converted to the uint32 batch size.
  json round = {{"task", "t"}, {"round", 1}, {"state", "open"}, {"base_version", 0}, {"seeds", json::array()}, {"lr", 0.1},
                {"eps", 0.001}, {"batch_size", 4.44444e95}, {"dist", "rademacher"}, {"deadline_ms", 0}};
  CHECK_FALSE(parse_round_info(round.dump()).is_ok());
  round["batch_size"] = -1;
  CHECK_FALSE(parse_round_info(round.dump()).is_ok());
  round["batch_size"] = 8;
  round["lr"] = 1e300;  // finite in JSON, beyond nothing: a double
  CHECK(parse_round_info(round.dump()).is_ok());
  json task = {{"id", "t"}, {"base_model_id", "x"}, {"trainable", "*"}, {"dist", "rademacher"}, {"lr", 0.1}, {"eps", 0.1},
               {"batch_size", 8}, {"tau", 5e9}, {"version", 0}, {"round", 0}};
  CHECK_FALSE(parse_task_info(task.dump()).is_ok());  // tau is a uint32
  task["tau"] = 4;
  CHECK(parse_task_info(task.dump()).is_ok());
}
