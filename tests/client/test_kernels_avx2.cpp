// The AVX2+FMA element-wise kernels the portable build dispatches to (kernels_avx2.h), against std::exp
// and the scalar references, and the attention of kernels.cpp routed through them. Run on any CPU with
// AVX2+FMA whatever the build's own instruction set; skipped elsewhere.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdlib>
#include <limits>
#include <random>
#include <vector>

#include "kernels.h"
#include "kernels_avx2.h"
#include "kernels_avx512.h"
#include "attention_check.h"
#include "kernels_ref.h"
#include "pocketllm/common/thread_pool.h"

using namespace pocketllm;

namespace {

using test::uniform;

// Routes kernels.cpp through the AVX2 kernels for one scope; narrow heads through the AVX2 key lanes, or
// with lanes = true the AVX2 query lanes (not the AVX-512 ones either way).
struct ForceAvx2 {
  explicit ForceAvx2(bool lanes = false) {
    avx2::set_preference_for_testing(1);
    avx2::set_lanes_preference_for_testing(lanes ? 1 : 0);
    avx512::set_preference_for_testing(0);
  }
  ~ForceAvx2() {
    avx2::set_preference_for_testing(-1);
    avx2::set_lanes_preference_for_testing(-1);
    avx512::set_preference_for_testing(-1);
  }
};

}  // namespace

TEST_CASE("AVX2 exp is within 4 ulp of expf from -87 to 88, gives 0 for -inf and underflow, keeps NaN", "[client][kernels][avx2]") {
  if (!avx2::supported()) {
    WARN("no AVX2+FMA on this CPU: skipped");
    return;
  }
  const double worst = test::exp_worst_relative_error(avx2::exp);
  INFO("worst relative error " << worst);
  CHECK(worst < 4 * 5.97e-8);  // 4 ulp of float at 1.0 (2^-24 each)
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> special = {-inf, -100.0f, -88.5f, std::nanf(""), 0.0f};
  std::vector<float> out(special.size(), 7.0f);
  avx2::exp(special.data(), special.size(), out.data());  // 5 elements: the padded tail path
  CHECK(out[0] == 0.0f);
  CHECK(out[1] == 0.0f);
  CHECK(out[2] == 0.0f);
  CHECK(std::isnan(out[3]));
  CHECK(out[4] == 1.0f);
}

TEST_CASE("AVX2 SiLU·up and log-sum-exp match the references, in place and on odd lengths", "[client][kernels][avx2]") {
  if (!avx2::supported()) {
    WARN("no AVX2+FMA on this CPU: skipped");
    return;
  }
  for (size_t n : {size_t{1}, size_t{7}, size_t{8}, size_t{9}, size_t{1003}}) {
    auto gate = uniform(n, -12.0f, 12.0f, 2 + n), up = uniform(n, -3.0f, 3.0f, 3 + n);
    auto ref = gate;
    ref::silu_mul(ref.data(), up.data(), n);
    avx2::silu_mul(gate.data(), up.data(), n);
    for (size_t i = 0; i < n; ++i) REQUIRE(gate[i] == Approx(ref[i]).epsilon(1e-6).margin(1e-7));

    auto row = uniform(n, -30.0f, 30.0f, 4 + n);
    double mx = -1e30, s = 0;
    for (float v : row) mx = std::max(mx, double(v));
    for (float v : row) s += std::exp(double(v) - mx);
    float fmax = -std::numeric_limits<float>::infinity(), fsum = 0.0f;
    // Folded in two pieces, as the loss folds a row tile by tile.
    avx2::logsumexp_fold_rows(row.data(), 1, n / 2, &fmax, &fsum);
    avx2::logsumexp_fold_rows(row.data() + n / 2, 1, n - n / 2, &fmax, &fsum);
    INFO("n " << n);
    CHECK(fmax == float(mx));
    CHECK(double(fmax) + std::log(double(fsum)) == Approx(mx + std::log(s)).epsilon(1e-6));
    // Rows folded side by side (groups of 4 and the rest) keep each row's bytes from alone.
    const size_t rows = 6;
    auto many = uniform(rows * n, -30.0f, 30.0f, 5 + n);
    std::vector<float> max_a(rows, -3.0f), sum_a(rows, 0.5f), max_b = max_a, sum_b = sum_a;
    avx2::logsumexp_fold_rows(many.data(), rows, n, max_a.data(), sum_a.data());
    for (size_t r = 0; r < rows; ++r) avx2::logsumexp_fold_rows(many.data() + r * n, 1, n, &max_b[r], &sum_b[r]);
    CHECK(std::memcmp(max_a.data(), max_b.data(), rows * 4) == 0);
    CHECK(std::memcmp(sum_a.data(), sum_b.data(), rows * 4) == 0);
  }
}

TEST_CASE("attention routed through the AVX2 kernels matches the reference for heads of 8 and 16", "[client][kernels][avx2]") {
  if (!avx2::supported()) {
    WARN("no AVX2+FMA on this CPU: skipped");
    return;
  }
  ForceAvx2 force;
  REQUIRE(avx2::preferred());
  for (size_t hd : {size_t{8}, size_t{16}})
    for (size_t past : {size_t{0}, size_t{30}}) {
      // three query blocks; groups of 4 and a last group of 1
      const auto c = test::causal_two_sequences(hd, past, past == 0 ? 150 : 37);
      const double worst = test::attention_max_error(c.s, c.q, c.k, c.v, c.len);
      INFO("head width " << hd << ", past " << past);
      CHECK(worst < 1e-5);
    }
}

TEST_CASE("AVX2 query-lane attention: each query within 1e-6 of a double softmax, the same bytes in any group and lane",
          "[client][kernels][avx2]") {
  if (!avx2::supported()) {
    WARN("no AVX2+FMA on this CPU: skipped");
    return;
  }
  for (size_t hd : {size_t{8}, size_t{16}}) {
    const auto c = test::query_lanes_check(avx2::attention_query_lanes, 8, avx2::lane_scratch_floats(test::kLaneKeys), hd);
    INFO("head width " << hd);
    CHECK(c.same_bytes);
    CHECK(c.head_only);
    CHECK(c.worst < 1e-6);
  }
}

TEST_CASE("attention routed through the AVX2 query lanes matches the reference: heads of 8 and 16, a cache, padding",
          "[client][kernels][avx2]") {
  if (!avx2::supported()) {
    WARN("no AVX2+FMA on this CPU: skipped");
    return;
  }
  ForceAvx2 force(true);
  REQUIRE(avx2::lanes_chosen());
  REQUIRE_FALSE(avx512::chosen());
  for (size_t hd : {size_t{8}, size_t{16}})
    for (size_t past : {size_t{0}, size_t{30}}) {
      // blocks of 64 and 22 (groups of 8, then 6 in masked lanes); 43 queries after a cache: five groups of
      // 8, then 3 for the key-lane groups
      auto c = test::causal_two_sequences(hd, past, past == 0 ? 150 : 43);
      INFO("head width " << hd << ", past " << past);
      CHECK(test::attention_max_error(c.s, c.q, c.k, c.v, c.len) < 1e-5);
      c.s.causal = false;
      CHECK(test::attention_max_error(c.s, c.q, c.k, c.v, c.len) < 1e-5);
    }
}

TEST_CASE("the AVX2 query lanes can be chosen and refused", "[client][kernels][avx2]") {
  avx2::set_lanes_preference_for_testing(0);
  CHECK_FALSE(avx2::lanes_chosen());
  avx2::set_lanes_preference_for_testing(1);
  CHECK(avx2::lanes_chosen() == avx2::supported());
  avx2::set_lanes_preference_for_testing(-1);
  if (std::getenv("POCKETLLM_ATTENTION") == nullptr) CHECK(avx2::lanes_chosen() == avx2::supported());
}

TEST_CASE("the AVX2 route can be chosen and refused", "[client][kernels][avx2]") {
  avx2::set_preference_for_testing(0);
  CHECK_FALSE(avx2::preferred());
  avx2::set_preference_for_testing(1);
  CHECK(avx2::preferred() == avx2::supported());
  avx2::set_preference_for_testing(-1);
#if defined(__AVX2__)
  if (std::getenv("POCKETLLM_VEC") == nullptr) CHECK_FALSE(avx2::preferred());  // a native AVX2 build keeps Eigen's
#endif
}

TEST_CASE("a key a query must not see leaves its output unchanged, however large, on every narrow-head route",
          "[client][kernels][avx2]") {
  // Keys from position `cut` on are replaced by huge, infinite and NaN values; every query before `cut` must
  // give the same bytes as with the original keys. A maximum taken over the masked lanes would underflow
  // every exp of such a query and give NaN. Routes: 0 the build's key lanes, 1 the AVX2 key lanes, 2 the
  // AVX-512 query lanes and 3 the AVX2 ones, which mask the values too (the key-lane kernels multiply a zero
  // weight into them).
  for (int route : {0, 1, 2, 3}) {
    if ((route == 1 || route == 3) && !avx2::supported()) continue;
    if (route == 2 && !avx512::supported()) continue;
    avx2::set_preference_for_testing(route == 1 ? 1 : 0);
    avx2::set_lanes_preference_for_testing(route == 3 ? 1 : 0);
    avx512::set_preference_for_testing(route == 2 ? 1 : 0);
    for (size_t hd : {size_t{8}, size_t{16}})
      for (size_t cut : {size_t{5}, size_t{21}, size_t{33}}) {
        AttentionShape s;
        s.batch = 1;
        s.tq = s.tk = 40;
        s.heads = s.kv_heads = 1;
        s.head_dim = hd;
        s.causal = true;
        const std::vector<int32_t> len = {40};
        const auto q = uniform(s.tq * hd, -2, 2, 41 + hd);
        auto k = uniform(s.tk * hd, -2, 2, 42 + hd), v = uniform(s.tk * hd, -2, 2, 43 + hd);
        std::vector<float> clean(q.size()), hostile(q.size());
        attention(nullptr, s, q.data(), k.data(), v.data(), len.data(), clean.data());
        for (size_t j = cut; j < s.tk; ++j)
          for (size_t e = 0; e < hd; ++e) {
            k[j * hd + e] = j % 3 == 0   ? 1e30f
                            : j % 3 == 1 ? std::numeric_limits<float>::infinity()
                                         : std::numeric_limits<float>::quiet_NaN();
            if (route >= 2) v[j * hd + e] = k[j * hd + e];
          }
        attention(nullptr, s, q.data(), k.data(), v.data(), len.data(), hostile.data());
        INFO("route " << route << ", head width " << hd << ", cut " << cut);
        CHECK(std::equal(clean.begin(), clean.begin() + cut * hd, hostile.begin()));
        CHECK(std::isfinite(clean[(cut - 1) * hd]));
      }
  }
  avx2::set_preference_for_testing(-1);
  avx2::set_lanes_preference_for_testing(-1);
  avx512::set_preference_for_testing(-1);
}
