// The packed GEMM micro-kernels (kernels_gemm.h), every path this CPU has, against the double-precision
// reference: ragged shapes around the register blocks (12 × 32, 6 × 16) and k blocks, output written into a
// wider matrix (nothing outside the block touched), every output bit for bit the FMA chain kernels_gemm.h
// documents whatever the k block, bytes independent of the batch, NaN kept to its row.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels_gemm.h"
#include "kernels_ref.h"

using namespace pocketllm;

namespace {

std::vector<float> randn(std::mt19937& rng, size_t n) {
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

std::vector<gemm::Path> packed_paths() {
  std::vector<gemm::Path> out;
  for (gemm::Path p : {gemm::Path::kAvx2, gemm::Path::kAvx512})
    if (gemm::path_supported(p)) out.push_back(p);
  return out;
}

// y (m × ldy, only columns [0, rows) written) through the packed path p.
void run(gemm::Path p, const std::vector<float>& x, size_t m, size_t k, const std::vector<float>& w, size_t rows, float* y,
         size_t ldy) {
  std::vector<float> xp(gemm::packed_x_floats(p, m, k)), scratch(gemm::tile_scratch_floats(p, rows, k));
  gemm::pack_x(p, x.data(), m, k, xp.data());
  gemm::multiply_tile(p, xp.data(), m, k, w.data(), rows, scratch.data(), y, ldy);
}

// The sum kernels_gemm.h promises, one scalar FMA at a time: one chain from zero over k ascending.
float chain_sum(const float* x, const float* w, size_t k) {
  float s = 0.0f;
  for (size_t kk = 0; kk < k; ++kk) s = std::fma(x[kk], w[kk], s);
  return s;
}

// Restores the machine's k block when a test that set one ends, passing or not.
struct KBlock {
  explicit KBlock(size_t kc) { gemm::set_k_block_for_testing(kc); }
  ~KBlock() { gemm::set_k_block_for_testing(0); }
};

}  // namespace

TEST_CASE("packed GEMM paths match the reference on ragged shapes", "[client][kernels][gemm]") {
  const auto paths = packed_paths();
  if (paths.empty()) WARN("no packed GEMM path on this CPU: not run");
  std::mt19937 rng(7);
  for (gemm::Path p : paths) {
    for (size_t m : {1, 5, 6, 7, 12, 13, 25, 100})
      for (size_t k : {1, 7, 255, 256, 257, 600})
        for (size_t rows : {1, 15, 16, 17, 31, 32, 33, 70}) {
          const auto x = randn(rng, m * k), w = randn(rng, rows * k);
          const size_t ldy = rows + 5;
          std::vector<float> y(m * ldy, 12345.0f), ref(m * rows);
          run(p, x, m, k, w, rows, y.data(), ldy);
          ref::linear(x.data(), m, k, w.data(), rows, nullptr, ref.data());
          double num = 0, den = 0;
          bool outside_kept = true;
          for (size_t r = 0; r < m; ++r) {
            for (size_t j = 0; j < rows; ++j) {
              const double d = double(y[r * ldy + j]) - ref[r * rows + j];
              num += d * d;
              den += double(ref[r * rows + j]) * ref[r * rows + j];
            }
            for (size_t j = rows; j < ldy; ++j) outside_kept = outside_kept && y[r * ldy + j] == 12345.0f;
          }
          INFO(gemm::path_name(p) << " m " << m << " k " << k << " rows " << rows);
          CHECK(std::sqrt(num / den) < 1e-5);
          CHECK(outside_kept);
        }
  }
}

TEST_CASE("packed GEMM: each output is the documented FMA chain over k, whatever the k block",
          "[client][kernels][gemm]") {
  const auto paths = packed_paths();
  if (paths.empty()) WARN("no packed GEMM path on this CPU: not run");
  std::mt19937 rng(5);
  for (gemm::Path p : paths)
    for (size_t kc : {size_t{0}, size_t{16}, size_t{64}, size_t{272}})  // 0: the machine's block
      for (size_t k : {3, 64, 172, 256, 257, 700, 1800})
        for (size_t m : {1, 7, 13, 40}) {
          const KBlock block(kc);
          const size_t rows = 37;
          const auto x = randn(rng, m * k), w = randn(rng, rows * k);
          std::vector<float> y(m * rows);
          run(p, x, m, k, w, rows, y.data(), rows);
          size_t differ = 0;
          for (size_t r = 0; r < m; ++r)
            for (size_t j = 0; j < rows; ++j) {
              const float want = chain_sum(x.data() + r * k, w.data() + j * k, k);
              differ += std::memcmp(&want, &y[r * rows + j], sizeof(float)) != 0;
            }
          INFO(gemm::path_name(p) << " k block " << gemm::k_block_limit(p) << " m " << m << " k " << k);
          CHECK(differ == 0);
        }
}

TEST_CASE("packed GEMM: the k block is a multiple of 64 from 128 to 2 048, and settable for tests", "[client][kernels][gemm]") {
  for (gemm::Path p : packed_paths()) {
    const size_t kc = gemm::k_block_limit(p);
    INFO(gemm::path_name(p) << " k block " << kc);
    CHECK(kc % 64 == 0);
    CHECK(kc >= 128);
    CHECK(kc <= 2048);
    {
      const KBlock block(20);
      CHECK(gemm::k_block_limit(p) == 32);  // rounded up to 16
    }
    CHECK(gemm::k_block_limit(p) == kc);
  }
}

TEST_CASE("packed GEMM: a row's bytes do not depend on its batch and NaN stays in its row", "[client][kernels][gemm]") {
  const auto paths = packed_paths();
  if (paths.empty()) WARN("no packed GEMM path on this CPU: not run");
  std::mt19937 rng(11);
  const size_t rows = 45, m = 29;
  for (gemm::Path p : paths)
    for (size_t k : {64, 700}) {
      auto x = randn(rng, m * k);
      const auto w = randn(rng, rows * k);
      std::vector<float> all(m * rows);
      run(p, x, m, k, w, rows, all.data(), rows);
      for (size_t r : {size_t{0}, size_t{11}, size_t{12}, m - 1}) {
        const std::vector<float> one(x.begin() + long(r * k), x.begin() + long((r + 1) * k));
        std::vector<float> y(rows);
        run(p, one, 1, k, w, rows, y.data(), rows);
        INFO(gemm::path_name(p) << " row " << r);
        CHECK(std::memcmp(y.data(), all.data() + r * rows, rows * sizeof(float)) == 0);
      }
      x[5 * k + 3] = NAN;
      run(p, x, m, k, w, rows, all.data(), rows);
      size_t nan_rows = 0, nan_in_row5 = 0;
      for (size_t r = 0; r < m; ++r)
        for (size_t j = 0; j < rows; ++j)
          if (std::isnan(all[r * rows + j])) {
            ++nan_rows;
            nan_in_row5 += r == 5;
          }
      CHECK(nan_in_row5 == rows);
      CHECK(nan_rows == rows);
    }
}

TEST_CASE("the chosen GEMM path is one the CPU supports and is named", "[client][kernels][gemm]") {
  const gemm::Path p = gemm::chosen_path();
  CHECK(gemm::path_supported(p));
  CHECK(std::strlen(gemm::path_name(p)) > 0);
}

TEST_CASE("an in x out weight tile (GPT-2's layout) gives the bytes of its transpose through multiply_tile",
          "[client][kernels][gemm]") {
  const auto paths = packed_paths();
  if (paths.empty()) WARN("no packed GEMM path on this CPU: not run");
  std::mt19937 rng(11);
  for (gemm::Path p : paths)
    for (size_t m : {1, 7, 13, 100})
      for (size_t k : {7, 256, 257})
        for (size_t cols : {1, 17, 33, 70}) {
          const auto x = randn(rng, m * k), w_in_out = randn(rng, k * cols);
          std::vector<float> w_out_in(cols * k);
          for (size_t r = 0; r < k; ++r)
            for (size_t j = 0; j < cols; ++j) w_out_in[j * k + r] = w_in_out[r * cols + j];
          const size_t ldy = cols + 3;
          std::vector<float> want(m * ldy, 7.0f), got(m * ldy, 7.0f);
          run(p, x, m, k, w_out_in, cols, want.data(), ldy);
          std::vector<float> xp(gemm::packed_x_floats(p, m, k)), scratch(gemm::tile_scratch_floats(p, cols, k));
          gemm::pack_x(p, x.data(), m, k, xp.data());
          gemm::multiply_tile_in_out(p, xp.data(), m, k, w_in_out.data(), cols, cols, scratch.data(), got.data(), ldy);
          INFO(gemm::path_name(p) << " m " << m << " k " << k << " cols " << cols);
          CHECK(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) == 0);
        }
}

TEST_CASE("packed GEMM: X packed a block of columns at a time, and W packed once for several row blocks, give the whole "
          "call's bytes", "[client][kernels][gemm]") {
  std::mt19937 rng(23);
  for (gemm::Path p : packed_paths())
    for (size_t m : {5, 12, 31, 50})
      for (size_t k : {9, 64, 172}) {
        INFO(gemm::path_name(p) << " m " << m << " k " << k);
        const auto x = randn(rng, m * k);
        std::vector<float> whole(gemm::packed_x_floats(p, m, k), -1.0f);
        gemm::pack_x(p, x.data(), m, k, whole.data());
        // Ragged column blocks, each from its own buffer as a gated MLP hands them over (row stride = width),
        // and row blocks of whole panels.
        const size_t mr = gemm::row_block(p);
        std::vector<float> parts(whole.size(), -2.0f);
        for (size_t r0 = 0; r0 < m; r0 += 2 * mr) {
          const size_t mv = std::min(2 * mr, m - r0);
          for (size_t c0 = 0; c0 < k;) {
            const size_t w = std::min<size_t>(k - c0, 1 + rng() % 40);
            std::vector<float> block(mv * w);
            for (size_t r = 0; r < mv; ++r) std::copy_n(x.data() + (r0 + r) * k + c0, w, block.data() + r * w);
            gemm::pack_x_columns(p, block.data(), w, mv, w, k, c0, parts.data() + r0 * k);
            c0 += w;
          }
        }
        CHECK(std::memcmp(parts.data(), whole.data(), whole.size() * 4) == 0);

        const size_t rows = 45;
        const auto wt = randn(rng, rows * k);
        std::vector<float> want(m * rows), got(m * rows, -3.0f);
        run(p, x, m, k, wt, rows, want.data(), rows);
        std::vector<float> panels(gemm::tile_scratch_floats(p, rows, k));
        gemm::pack_w(p, wt.data(), k, rows, k, panels.data());
        for (size_t r0 = 0; r0 < m; r0 += mr)
          gemm::multiply_panels(p, whole.data() + r0 * k, std::min(mr, m - r0), k, panels.data(), rows, got.data() + r0 * rows, rows);
        CHECK(std::memcmp(got.data(), want.data(), want.size() * 4) == 0);
      }
}
