#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "pocketllm/server/aggregation.h"

using namespace pocketllm::server;

TEST_CASE("weighted mean weighs each device by its example count", "[server][aggregation]") {
  std::vector<Submission> s = {{"a", {1.0f, -2.0f}, 1}, {"b", {3.0f, 2.0f}, 3}};
  auto r = aggregate(s, 2, AggregationOptions{});
  REQUIRE(r.is_ok());
  CHECK(r.value()[0] == Approx((1.0 * 1 + 3.0 * 3) / 4));
  CHECK(r.value()[1] == Approx((-2.0 * 1 + 2.0 * 3) / 4));
  s[1].weight = 0.0;  // e.g. a stale submission down-weighted to nothing
  CHECK(aggregate(s, 2, AggregationOptions{}).value()[0] == Approx(1.0));
}

TEST_CASE("median and trimmed mean resist an outlier device: clipping bounds every scalar", "[server][aggregation]") {
  std::vector<Submission> s;
  for (int i = 0; i < 9; ++i) s.push_back({"d" + std::to_string(i), {static_cast<float>(i)}, 1});
  s.push_back({"evil", {1e6f}, 1000});
  AggregationOptions o;
  o.strategy = Strategy::kMedian;
  CHECK(aggregate(s, 1, o).value()[0] == Approx(4.5));  // even count: mean of the middle two
  o.strategy = Strategy::kTrimmedMean;
  o.trim_fraction = 0.1;  // cuts one from each end of ten
  CHECK(aggregate(s, 1, o).value()[0] == Approx((1 + 2 + 3 + 4 + 5 + 6 + 7 + 8) / 8.0));
  o.strategy = Strategy::kWeightedMean;
  o.clip = 10.0f;
  const double want = (36.0 + 10.0 * 1000) / 1009;
  CHECK(aggregate(s, 1, o).value()[0] == Approx(want));
}

TEST_CASE("bad submissions are refused with a reason", "[server][aggregation]") {
  AggregationOptions o;
  CHECK_FALSE(aggregate({}, 1, o).is_ok());
  CHECK(aggregate({{"a", {1.0f, 2.0f}, 1}}, 3, o).status().message().find("expected 3") != std::string::npos);
  CHECK(aggregate({{"a", {std::numeric_limits<float>::quiet_NaN()}, 1}}, 1, o).status().message().find("non-finite") !=
        std::string::npos);
  o.min_submissions = 2;
  CHECK(aggregate({{"a", {1.0f}, 1}}, 1, o).status().message().find("at least 2") != std::string::npos);
  o.min_submissions = 1;
  CHECK_FALSE(aggregate({{"a", {1.0f}, 0}}, 1, o).is_ok());  // zero total weight
  Strategy st;
  CHECK(parse_strategy("trimmed_mean", &st));
  CHECK_FALSE(parse_strategy("mean", &st));
}

TEST_CASE("aggregation does not depend on the order submissions arrived in", "[server][aggregation]") {
  std::vector<Submission> s;
  for (int i = 0; i < 7; ++i) s.push_back({"d" + std::to_string(i), {0.1f * static_cast<float>(i) + 1e-7f * static_cast<float>(i * i), 1.0f / static_cast<float>(i + 3)}, static_cast<uint64_t>(i + 1)});
  for (Strategy st : {Strategy::kWeightedMean, Strategy::kMedian, Strategy::kTrimmedMean}) {
    AggregationOptions o;
    o.strategy = st;
    const auto ref = aggregate(s, 2, o).value();
    auto shuffled = s;
    for (int rep = 0; rep < 20; ++rep) {
      std::rotate(shuffled.begin(), shuffled.begin() + 3, shuffled.end());
      std::swap(shuffled[1], shuffled[5]);
      const auto got = aggregate(shuffled, 2, o).value();
      CHECK(std::memcmp(got.data(), ref.data(), 8) == 0);
    }
  }
}
