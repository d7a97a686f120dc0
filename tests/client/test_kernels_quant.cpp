// Matrix products over block-quantized weights: the direct kernel (decode) and the dequantized-tile GEMM
// (batches) against dequantize-then-float64 reference sums, for every block type pocketllm reads.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels.h"
#include "kernels_kquant.h"
#include "kernels_quant.h"
#include "pocketllm/common/cpu_features.h"
#include "pocketllm/common/quant.h"

using namespace pocketllm;

namespace {

// Random blocks with finite, small f16 scales (a random f16 could be inf or nan).
std::vector<uint8_t> random_quantized(DType t, size_t rows, size_t cols, std::mt19937& rng) {
  std::vector<uint8_t> q(dtype_bytes(t, rows * cols));
  if (t == DType::kF16 || t == DType::kBF16) {  // half-precision weights from finite floats
    std::normal_distribution<float> nd(0.0f, 0.05f);
    for (size_t i = 0; i < rows * cols; ++i) {
      const float v = nd(rng);
      const uint16_t h = t == DType::kF16 ? f32_to_f16(v) : f32_to_bf16(v);
      std::memcpy(&q[2 * i], &h, 2);
    }
    return q;
  }
  for (auto& b : q) b = static_cast<uint8_t>(rng());
  const size_t bb = dtype_block_bytes(t);
  std::uniform_real_distribution<float> scale(-0.02f, 0.02f);
  for (size_t at = 0; at < q.size(); at += bb) {
    auto put = [&](size_t off) {
      const uint16_t h = f32_to_f16(scale(rng));
      std::memcpy(&q[at + off], &h, 2);
    };
    if (t == DType::kQ8_0 || t == DType::kQ4_0) put(0);
    if (t == DType::kQ4_K || t == DType::kQ5_K || t == DType::kQ4_1 || t == DType::kQ5_1) put(0), put(2);
    if (t == DType::kQ5_0) put(0);
    if (t == DType::kQ6_K) put(208);
    if (t == DType::kQ2_K) put(80), put(82);
    if (t == DType::kQ3_K) put(108);
  }
  return q;
}

// The product of row r of x with row j of the dequantized weights when the activations are quantized per
// 32-element block (d = max|x| / 127, q = round-half-even(x / d)) as the int8 kernels do: `exact` (relative
// error of y against it, over the magnitude of its terms).
double int8_activation_error(const std::vector<float>& x, const std::vector<float>& deq, const std::vector<float>& y, size_t m,
                             size_t n, size_t k) {
  double worst = 0;
  for (size_t r = 0; r < m; ++r) {
    std::vector<int> xq(k);
    std::vector<float> dx(k / 32);
    for (size_t b = 0; b < k / 32; ++b) {
      float amax = 0;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[r * k + b * 32 + j]));
      dx[b] = amax / 127.0f;
      const float id = dx[b] != 0.0f ? 1.0f / dx[b] : 0.0f;
      for (int j = 0; j < 32; ++j) xq[b * 32 + j] = static_cast<int>(std::nearbyint(x[r * k + b * 32 + j] * id));
    }
    for (size_t j = 0; j < n; ++j) {
      double exact = 0, mag = 0;
      for (size_t b = 0; b < k / 32; ++b) {
        double isum = 0;
        for (int e = 0; e < 32; ++e) isum += xq[b * 32 + e] * double(deq[j * k + b * 32 + e]);
        exact += isum * dx[b];
        mag += std::fabs(isum * dx[b]);
      }
      worst = std::max(worst, std::fabs(y[r * n + j] - exact) / (mag + 1e-30));
    }
  }
  return worst;
}

// Relative error of y against the float64 product of x with the dequantized weights.
double float_product_error(const std::vector<float>& x, const std::vector<float>& deq, const std::vector<float>& y, size_t m,
                           size_t n, size_t k) {
  double worst = 0;
  for (size_t r = 0; r < m; ++r)
    for (size_t j = 0; j < n; ++j) {
      double ref = 0, mag = 0;
      for (size_t i = 0; i < k; ++i) {
        ref += double(x[r * k + i]) * deq[j * k + i];
        mag += std::fabs(double(x[r * k + i]) * deq[j * k + i]);
      }
      worst = std::max(worst, std::fabs(y[r * n + j] - ref) / (mag + 1e-30));
    }
  return worst;
}

}  // namespace

TEST_CASE("quantized and half-precision products equal dequantize-then-multiply", "[client][kernels][quant]") {
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  ThreadPool pool(2);
  for (DType t : {DType::kQ8_0, DType::kQ4_0, DType::kQ4_K, DType::kQ6_K, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kQ2_K,
                  DType::kQ3_K, DType::kQ5_K, DType::kF16, DType::kBF16}) {
    const size_t n = 96, k = 512;
    auto q = random_quantized(t, n, k, rng);
    Weight w;
    w.name = "w";
    w.shape = {static_cast<int64_t>(n), static_cast<int64_t>(k)};
    w.dtype = t;
    w.data = q.data();
    std::vector<float> deq(n * k);
    REQUIRE(convert_to_f32(t, q.data(), n * k, deq.data()));
    for (size_t m : {size_t{1}, size_t{3}, size_t{17}}) {  // direct kernel, and the tile + GEMM path
      INFO(dtype_name(t) << " rows " << m);
      std::vector<float> x(m * k), y(m * n);
      for (auto& v : x) v = nd(rng);
      linear(&pool, x.data(), m, k, w, nullptr, Perturbation{}, y.data());
      // arm64 with dotprod decodes Q8_0/Q4_0 with 8-bit activations: compare with that arithmetic there.
      // x86 with AVX2 decodes Q4_K/Q5_K/Q6_K with 8-bit activations the same way.
      const bool int8 = m <= kQuantDirectMaxRows && ((direct_int8_kernels() && (t == DType::kQ8_0 || t == DType::kQ4_0)) ||
                                                     (direct_kernels_x86() && kquant::has_x86_int8_kernel(t)));
      const double worst = float_product_error(x, deq, y, m, n, k);
      if (int8) {
        INFO("int8 decode path");
        CHECK(int8_activation_error(x, deq, y, m, n, k) < 1e-5);
        CHECK(worst < 0.02);
      } else {
        CHECK(worst < 1e-5);
      }
      // And the single-row reference entry point agrees with the dequantized row.
      const float d0 = quantized_row_dot(t, q.data(), x.data(), k);
      double r0 = 0;
      for (size_t i = 0; i < k; ++i) r0 += double(x[i]) * deq[i];
      CHECK(std::fabs(d0 - r0) <= 1e-4 * (std::fabs(r0) + 1));
    }
  }
}

TEST_CASE("the portable K-quant kernels (arm64's decode path) equal dequantize-then-multiply on every CPU", "[client][kernels][quant]") {
  std::mt19937 rng(12);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (DType t : {DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
    INFO(dtype_name(t));
    REQUIRE(kquant::has_portable_kernel(t));
    const size_t n = 8, k = 768;
    auto q = random_quantized(t, n, k, rng);
    std::vector<float> deq(n * k), x(k);
    REQUIRE(convert_to_f32(t, q.data(), n * k, deq.data()));
    for (auto& v : x) v = nd(rng);
    const size_t row_bytes = dtype_bytes(t, k);
    for (size_t j = 0; j < n; ++j) {
      double exact = 0, scale = 0;
      for (size_t i = 0; i < k; ++i) {
        exact += double(x[i]) * deq[j * k + i];
        scale += std::fabs(double(x[i]) * deq[j * k + i]);
      }
      const float got = kquant::dot_portable(t, q.data() + j * row_bytes, x.data(), k / dtype_block_size(t));
      CHECK(std::fabs(got - exact) <= 1e-5 * (scale + 1e-6));
    }
  }
  CHECK_FALSE(kquant::has_portable_kernel(DType::kQ2_K));
}

#include "kernels_quant_packed.h"

TEST_CASE("packed int8 kernels equal exact integer block sums of the quantized activations", "[client][kernels][quant]") {
  if (!packed_quant_kernels_available()) {
    WARN("skipped: this CPU has no packed int8 kernels (x86: AVX-512 VNNI; arm64: dotprod or i8mm)");
    return;
  }
  INFO("packed path " << packed_quant_path());
  // Every path packs Q8_0 and Q4_0 (x86 also the K types); a type it does not pack stays as stored.
  CHECK(packed_quant_type(DType::kQ8_0));
  CHECK(packed_quant_type(DType::kQ4_0));
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  ThreadPool pool(2);
  for (DType t : {DType::kQ8_0, DType::kQ4_0, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
    const size_t n = 48, k = 512;  // three groups of 16 rows; two K-type super-blocks per row
    auto q = random_quantized(t, n, k, rng);
    WeightStore ws;
    ws.add_view("w", {static_cast<int64_t>(n), static_cast<int64_t>(k)}, t, q.data());
    if (!packed_quant_type(t)) {
      CHECK(pack_quantized_weights(&ws, nullptr) == 0);
      continue;
    }
    size_t released = 0;
    REQUIRE(pack_quantized_weights(&ws, [&](const Weight&) { ++released; }) == 1);
    CHECK(released == 1);
    const Weight& w = *ws.find("w");
    REQUIRE(w.packed != nullptr);
    std::vector<float> deq(n * k);
    REQUIRE(convert_to_f32(t, q.data(), n * k, deq.data()));
    std::vector<float> rows(3 * k);  // the embedding lookup's path: rows read back from the packed copy
    unpack_rows(w, 17, 3, rows.data());
    CHECK(std::vector<float>(deq.begin() + 17 * k, deq.begin() + 20 * k) == rows);
    for (size_t m : {size_t{1}, size_t{2}, size_t{5}, size_t{7}, size_t{70}}) {  // whole and partial register tiles
      INFO(dtype_name(t) << " rows " << m);
      std::vector<float> x(m * k), y(m * n);
      for (auto& v : x) v = nd(rng);
      x[3] = 0.0f;
      if (m > 1) std::fill(x.begin() + k, x.begin() + k + 32, 0.0f);  // an all-zero activation block
      linear(&pool, x.data(), m, k, w, nullptr, Perturbation{}, y.data());
      // The activations quantized as the kernels' contract says: per 32 elements d = max|x| / 127,
      // q = round-half-even(x / d).
      const double worst_exact = int8_activation_error(x, deq, y, m, n, k);
      const double worst_float = float_product_error(x, deq, y, m, n, k);
      CHECK(worst_exact < 1e-5);   // the arithmetic is exact up to float rounding of the block sums
      CHECK(worst_float < 0.02);   // and 8-bit activations stay close to the float product
    }
    // A non-finite activation makes its row's products NaN (as a float product would), never garbage or UB.
    std::vector<float> x(2 * k, 0.5f), y(2 * n);
    x[40] = INFINITY;
    linear(&pool, x.data(), 2, k, w, nullptr, Perturbation{}, y.data());
    CHECK(std::isnan(y[0]));
    CHECK(std::isfinite(y[n]));
  }
}

#include "kernels_quant_packed_isa.h"

TEST_CASE("POCKETLLM_INT8 turns the packed kernels off or picks a narrower path the CPU has", "[client][kernels][quant]") {
  const char* best = packed_isa::detect(nullptr);
  CHECK(packed_isa::detect("off") == nullptr);
  CHECK((packed_isa::detect("no-such-path") == nullptr) == (best == nullptr));  // an unknown name changes nothing
  const CpuFeatures& c = cpu_features();
#if defined(__aarch64__) && defined(__linux__)
  CHECK((best != nullptr) == c.arm_dotprod);
  if (c.arm_dotprod) CHECK(std::string(packed_isa::detect("dotprod")) == "dotprod");
  if (c.arm_i8mm && c.arm_dotprod) CHECK(std::string(best) == "i8mm");
#elif defined(__x86_64__)
  CHECK((best != nullptr) == (c.avx512vnni && c.avx512bw && c.avx512vl));
#endif
}
