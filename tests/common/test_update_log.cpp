#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "pocketllm/common/update_log.h"

using namespace pocketllm;

namespace {

UpdateLog random_log(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  UpdateLog log;
  for (size_t i = 0; i < n; ++i) {
    uint32_t bits = static_cast<uint32_t>(rng());
    bits &= 0x807fffffu;
    bits |= static_cast<uint32_t>(100 + rng() % 40) << 23;  // finite, wide range of magnitudes
    float c;
    std::memcpy(&c, &bits, 4);
    REQUIRE(log.append({rng(), c}).is_ok());
  }
  return log;
}

std::vector<float> random_tensor(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 0.02f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

}  // namespace

TEST_CASE("seeds print as 16 lower-case hex digits and parse back", "[common][log]") {
  CHECK(seed_to_hex(0) == "0000000000000000");
  CHECK(seed_to_hex(0x0123456789ABCDEFull) == "0123456789abcdef");
  uint64_t s = 0;
  CHECK(seed_from_hex("ffffffffffffffff", &s));
  CHECK(s == ~uint64_t{0});
  CHECK_FALSE(seed_from_hex("123", &s));
  CHECK_FALSE(seed_from_hex("0123456789abcdeg", &s));
  CHECK(parse_seed_text("0x2a", &s));
  CHECK(s == 42);
  CHECK(parse_seed_text("18446744073709551615", &s));
  CHECK(s == ~uint64_t{0});
  CHECK_FALSE(parse_seed_text("18446744073709551616", &s));
  CHECK_FALSE(parse_seed_text("0x", &s));
  CHECK_FALSE(parse_seed_text("-1", &s));
}

TEST_CASE("a log survives JSON and binary round trips bit for bit", "[common][log]") {
  const UpdateLog log = random_log(1000, 5);
  auto from_json = UpdateLog::from_json(log.to_json());
  REQUIRE(from_json.is_ok());
  CHECK(from_json.value() == log);
  auto from_bin = UpdateLog::from_binary(log.to_binary());
  REQUIRE(from_bin.is_ok());
  CHECK(from_bin.value() == log);
  CHECK(log.to_binary().size() == 16 + 12 * 1000 + 8);
}

TEST_CASE("a JSON log carries seeds as hex strings and coeffs as plain numbers", "[common][log]") {
  UpdateLog log;
  REQUIRE(log.append({0xfedcba9876543210ull, 0.1f}).is_ok());
  const std::string json = log.to_json();
  CHECK(json.find("\"seed\":\"fedcba9876543210\"") != std::string::npos);
  // 0.1f is 0.100000001490116119384765625: the double printed must parse back to the same float.
  const size_t at = json.find("\"coeff\":");
  REQUIRE(at != std::string::npos);
  const double printed = std::strtod(json.c_str() + at + 8, nullptr);
  CHECK(static_cast<float>(printed) == 0.1f);
  CHECK(printed == static_cast<double>(0.1f));
}

TEST_CASE("malformed logs are rejected with a reason", "[common][log]") {
  CHECK(UpdateLog::from_json("not json").status().code() == StatusCode::kCorrupt);
  CHECK(UpdateLog::from_json("[]").status().code() == StatusCode::kCorrupt);
  CHECK(UpdateLog::from_json(R"({"format":"pocketllm.update_log","version":2,"entries":[]})").status().code() ==
        StatusCode::kUnsupported);
  auto bad_seed = UpdateLog::from_json(R"({"format":"pocketllm.update_log","version":1,"entries":[{"seed":12,"coeff":1}]})");
  CHECK_FALSE(bad_seed.is_ok());
  CHECK(bad_seed.status().message().find("entry 0") != std::string::npos);
  CHECK_FALSE(UpdateLog::from_json(
                  R"({"format":"pocketllm.update_log","version":1,"entries":[{"seed":"0000000000000001","coeff":1e300}]})")
                  .is_ok());
  CHECK_FALSE(UpdateLog::from_json(
                  R"({"format":"pocketllm.update_log","version":1,"entries":[{"seed":"0000000000000001","coeff":"1"}]})")
                  .is_ok());

  const std::string bin = random_log(10, 1).to_binary();
  CHECK_FALSE(UpdateLog::from_binary(bin.substr(0, bin.size() - 1)).is_ok());  // truncated
  std::string flipped = bin;
  flipped[20] ^= 1;
  CHECK(UpdateLog::from_binary(flipped).status().message().find("checksum") != std::string::npos);
  std::string huge_count = bin;
  huge_count[15] = '\x7f';  // count near 2^63: must not allocate or overflow
  CHECK_FALSE(UpdateLog::from_binary(huge_count).is_ok());
  CHECK_FALSE(UpdateLog::from_binary("PLLMLOG2").is_ok());
}

TEST_CASE("a non-finite coeff never enters a log", "[common][log]") {
  UpdateLog log;
  CHECK_FALSE(log.append({1, std::numeric_limits<float>::quiet_NaN()}).is_ok());
  CHECK_FALSE(log.append({1, std::numeric_limits<float>::infinity()}).is_ok());
  CHECK(log.empty());
}

TEST_CASE("slices cover the log and clamp at its ends", "[common][log]") {
  const UpdateLog log = random_log(10, 2);
  CHECK(log.slice(0, 10) == log);
  CHECK(log.slice(3, 7).size() == 4);
  CHECK(log.slice(3, 7)[0] == log[3]);
  CHECK(log.slice(8, 100).size() == 2);
  CHECK(log.slice(20, 30).empty());
}

TEST_CASE("replaying a log on two devices gives identical bytes", "[common][log][replay]") {
  const UpdateLog log = random_log(200, 11);
  for (Distribution dist : {Distribution::kRademacher, Distribution::kGaussian}) {
    auto a_q = random_tensor(70001, 1), a_v = random_tensor(3333, 2);
    auto b_q = a_q, b_v = a_v;
    ThreadPool two(2);
    replay_log(&two, dist, log, {{"layers.0.q.weight", a_q.data(), a_q.size()}, {"layers.0.v.weight", a_v.data(), a_v.size()}});
    replay_log(nullptr, dist, log, {{"layers.0.q.weight", b_q.data(), b_q.size()}, {"layers.0.v.weight", b_v.data(), b_v.size()}});
    CHECK(std::memcmp(a_q.data(), b_q.data(), a_q.size() * 4) == 0);
    CHECK(std::memcmp(a_v.data(), b_v.data(), a_v.size() * 4) == 0);

    SECTION("entry by entry equals the whole log") {
      auto c_q = random_tensor(70001, 1);
      for (size_t i = 0; i < log.size(); ++i)
        replay_entries(nullptr, dist, &log.entries()[i], 1, {{"layers.0.q.weight", c_q.data(), c_q.size()}});
      CHECK(std::memcmp(a_q.data(), c_q.data(), a_q.size() * 4) == 0);
    }
    SECTION("the update changed the weights by the logged amount") {
      // Each element moved by exactly the sum of +-coeff (Rademacher) up to float rounding.
      auto base = random_tensor(3333, 2);
      double moved = 0;
      for (size_t i = 0; i < base.size(); ++i) moved += std::fabs(static_cast<double>(a_v[i]) - base[i]);
      CHECK(moved > 0);
    }
  }
}

#include "pocketllm/common/json_util.h"

TEST_CASE("json: nesting is bounded before parsing: strings do not count", "[common][json]") {
  using pocketllm::json_depth_within;
  CHECK(json_depth_within("[[[1]]]", 3));
  CHECK_FALSE(json_depth_within("[[[1]]]", 2));
  CHECK(json_depth_within(R"({"a":"[[[[[[[[[[ \" {{{{{{{{{"})", 1));  // brackets inside strings
  std::string deep(200000, '[');
  CHECK_FALSE(json_depth_within(deep));
  CHECK(pocketllm::parse_json(deep).is_discarded());
  CHECK(pocketllm::parse_json(R"({"a":[1,2,{"b":null}]})")["a"][2].contains("b"));
  CHECK(pocketllm::parse_json("{not json").is_discarded());
  // An update log whose JSON nests 10^5 deep is a clear error, not a stack overflow.
  auto log = pocketllm::UpdateLog::from_json(std::string(100000, '[') + std::string(100000, ']'));
  CHECK_FALSE(log.is_ok());
}
