// The run-time-chosen AVX-512 kernels (kernels_avx512.h): the exp against std::exp, the query-lane
// attention against a scalar softmax in double, the same bytes for a query in any group or lane, and
// kernels.cpp's attention routed through it against the reference. Run on any CPU with AVX-512F whatever
// the build's own instruction set; skipped elsewhere.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "attention_check.h"
#include "kernels.h"
#include "kernels_avx2.h"
#include "kernels_avx512.h"

using namespace pocketllm;

namespace {

// Routes kernels.cpp's narrow heads through the query-lane kernel (1) or away from it (0) for one scope.
struct LaneRoute {
  explicit LaneRoute(int mode) { avx512::set_preference_for_testing(mode); }
  ~LaneRoute() { avx512::set_preference_for_testing(-1); }
};

}  // namespace

TEST_CASE("AVX-512 exp is within 2 ulp of expf from -87 to 88, 0 below -87 and for -inf, +inf past ln(FLT_MAX), keeps NaN",
          "[client][kernels][avx512]") {
  if (!avx512::supported()) {
    WARN("no AVX-512F on this CPU: skipped");
    return;
  }
  const double worst = test::exp_worst_relative_error(avx512::exp);
  INFO("worst relative error " << worst);
  CHECK(worst < 2 * 1.1921e-7);  // 2 ulp of float anywhere in a binade (2^-23 relative each)
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> special = {-inf, -1000.0f, -87.5f, std::nanf(""), 0.0f, 88.8f, 1000.0f, inf, 88.5f};
  std::vector<float> out(special.size(), 7.0f);
  avx512::exp(special.data(), special.size(), out.data());  // 9 elements: the masked tail
  CHECK(out[0] == 0.0f);
  CHECK(out[1] == 0.0f);
  CHECK(out[2] == 0.0f);
  CHECK(std::isnan(out[3]));
  CHECK(out[4] == 1.0f);
  CHECK(out[5] == inf);
  CHECK(out[6] == inf);
  CHECK(out[7] == inf);
  CHECK(out[8] == Approx(std::exp(88.5)).epsilon(3e-7));
  // In place, and the tail leaves what lies past n alone.
  std::vector<float> in_place = {0.5f, -2.0f, 3.0f, 42.0f};
  avx512::exp(in_place.data(), 3, in_place.data());
  CHECK(in_place[1] == Approx(std::exp(-2.0)).epsilon(3e-7));
  CHECK(in_place[3] == 42.0f);
}

TEST_CASE("query-lane attention: each query within 1e-6 of a double softmax, the same bytes in any group and lane",
          "[client][kernels][avx512]") {
  if (!avx512::supported()) {
    WARN("no AVX-512F on this CPU: skipped");
    return;
  }
  for (size_t hd : {size_t{8}, size_t{16}}) {
    const auto c = test::query_lanes_check(avx512::attention_query_lanes, 16, avx512::lane_scratch_floats(test::kLaneKeys), hd);
    INFO("head width " << hd);
    CHECK(c.same_bytes);
    CHECK(c.head_only);
    CHECK(c.worst < 1e-6);
  }
}

TEST_CASE("attention routed through the query-lane kernel matches the reference: heads of 8 and 16, a cache, padding",
          "[client][kernels][avx512]") {
  if (!avx512::supported()) {
    WARN("no AVX-512F on this CPU: skipped");
    return;
  }
  LaneRoute route(1);
  REQUIRE(avx512::chosen());
  for (size_t hd : {size_t{8}, size_t{16}})
    for (size_t past : {size_t{0}, size_t{30}}) {
      // blocks of 64 and 22 (lanes, then a group of 6 for the key-lane kernel)
      auto c = test::causal_two_sequences(hd, past, past == 0 ? 150 : 45);
      INFO("head width " << hd << ", past " << past);
      CHECK(test::attention_max_error(c.s, c.q, c.k, c.v, c.len) < 1e-5);
      c.s.causal = false;  // every query sees every key of its sequence
      CHECK(test::attention_max_error(c.s, c.q, c.k, c.v, c.len) < 1e-5);
    }
}

TEST_CASE("the query-lane route can be chosen and refused", "[client][kernels][avx512]") {
  {
    LaneRoute off(0);
    CHECK_FALSE(avx512::chosen());
  }
  LaneRoute on(1);
  CHECK(avx512::chosen() == avx512::supported());
}
