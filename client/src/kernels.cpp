#include "kernels.h"

#include "kernels_avx2.h"
#include "kernels_avx512.h"
#include "kernels_exp.h"
#include "kernels_gemm.h"
#include "kernels_quant.h"
#include "kernels_quant_packed.h"

#include <Eigen/Core>
#include <unsupported/Eigen/SpecialFunctions>
#include <algorithm>
#include <cstdint>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <vector>

namespace pocketllm {
namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using StridedMat = Eigen::Map<RowMat, 0, Eigen::OuterStride<>>;
using ConstStridedMat = Eigen::Map<const RowMat, 0, Eigen::OuterStride<>>;

// Work split on the Eigen paths: never by the thread count. Eigen's result for an output element depends
// on the shape of the product it is computed in (its blocking and remainder loops), so tiles and row
// blocks are a function of the layer's shape alone and a forward pass gives the same bits on any number
// of threads (the two passes of a ZO step may run on different numbers: client/paired_forward.h).
constexpr size_t kEigenTasks = 16;  // tiles or row blocks per product: two per thread up to 8 threads

// Rows of W per task: about 256 KiB of float32, at least 16, a multiple of 16, halved until there are
// kEigenTasks tiles.
size_t tile_rows(size_t n, size_t k) {
  size_t rows = std::max<size_t>(16, (size_t{1} << 16) / std::max<size_t>(k, 1));
  rows = (rows + 15) / 16 * 16;
  while (rows > 16 && (n + rows - 1) / rows < kEigenTasks) rows /= 2;
  return std::min(rows, n);
}

// fn(r0, r1) over up to 64 tasks of at least min_rows rows each.
template <class Fn>
void parallel_row_ranges(ThreadPool* pool, size_t m, size_t min_rows, Fn&& fn) {
  const size_t tasks = std::max<size_t>(1, std::min<size_t>(m / std::max<size_t>(min_rows, 1), 64));
  const size_t per = (m + tasks - 1) / tasks;
  parallel_for(pool, tasks, [&](size_t t) {
    const size_t r0 = t * per, r1 = std::min(m, r0 + per);
    if (r0 < r1) fn(r0, r1);
  });
}

template <class Fn>
void parallel_rows(ThreadPool* pool, size_t m, size_t min_rows, Fn&& fn) {
  parallel_row_ranges(pool, m, min_rows, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) fn(r);
  });
}

// Eigen's packet exp, 16 floats at a time with the tail padded to a whole block, so that every element
// takes the same instructions whatever the buffer's alignment: a forward pass must give the same bytes
// from any buffer (resume and replay are checked bit for bit). Scalar std::exp made the softmax and SiLU
// about a third of a small model's forward pass.
using Block = Eigen::Array<float, 16, 1>;

// exp of a block: kernels_exp.h's AVX-512 exp in AVX-512 builds (1.2–1.3× Eigen's there), Eigen's
// packet exp in others.
inline Block exp_block(const Block& x) {
#if defined(__AVX512F__)
  Block out;
  _mm512_storeu_ps(out.data(), vexp::exp_ps(_mm512_loadu_ps(x.data())));
  return out;
#else
  return x.exp();
#endif
}

// x[i] = fn(x[i]) for i < n, block by block; padding lanes hold `pad`.
template <class Fn>
void for_blocks(float* x, size_t n, float pad, Fn&& fn) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    Eigen::Map<Block> b(x + i);
    b = fn(Block(b));
  }
  if (i < n) {
    Block b = Block::Constant(pad);
    std::copy(x + i, x + n, b.data());
    b = fn(b);
    std::copy(b.data(), b.data() + (n - i), x + i);
  }
}

}  // namespace

float* thread_scratch(size_t floats, int slot) {
  constexpr size_t kLine = 64 / sizeof(float);  // a cache line: 64-byte loads of the GEMM panels never split
  thread_local std::vector<float> buffers[17];
  auto& b = buffers[slot];
  if (b.size() < floats + kLine - 1) b.resize(floats + kLine - 1);
  const auto at = reinterpret_cast<uintptr_t>(b.data());
  return b.data() + (kLine - at / sizeof(float) % kLine) % kLine;
}

namespace {

// y[m, n] += scale * (x A^T) B^T for the adapter on `w` (A [r, k], B [n, r], read through weight_rows so
// trainable ones are perturbed). A and B are generated once on the calling thread (slots 6 and 7); the
// rows of x are split over the pool, each task with its own x A^T rows (slot 8).
void add_lora_term(ThreadPool* pool, const float* x, size_t m, size_t k, const Weight& w, const Perturbation& p, size_t n,
                   float* y) {
  const Weight& A = *w.lora_a;
  const Weight& B = *w.lora_b;
  const size_t r = A.rows();
  const float* a = weight_rows(A, 0, r, p, thread_scratch(r * k, 6));
  const float* b = weight_rows(B, 0, n, p, thread_scratch(n * r, 7));
  ConstStridedMat am(a, static_cast<Eigen::Index>(r), static_cast<Eigen::Index>(k), Eigen::OuterStride<>(k));
  ConstStridedMat bm(b, static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(r), Eigen::OuterStride<>(r));
  if (m * (n + k) * r < (size_t{1} << 17)) pool = nullptr;
  const size_t tasks = std::min<size_t>(m, kEigenTasks);  // row blocks: by shape, not threads (tile_rows)
  const size_t per = (m + tasks - 1) / tasks;
  const float scale = w.lora_scale;
  parallel_for(pool, tasks, [&](size_t t) {
    const size_t r0 = t * per, rows = r0 < m ? std::min(per, m - r0) : 0;
    if (rows == 0) return;
    float* xa = thread_scratch(rows * r, 8);
    ConstStridedMat xm(x + r0 * k, static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(k), Eigen::OuterStride<>(k));
    StridedMat xam(xa, static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(r), Eigen::OuterStride<>(r));
    xam.noalias() = xm * am.transpose();
    StridedMat ym(y + r0 * n, static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(n), Eigen::OuterStride<>(n));
    ym.noalias() += scale * (xam * bm.transpose());
  });
}

// y[r, n0 + j] += bias[n0 + j] for the columns [n0, n0 + cols) of y [m, n]; the bias read as one "row"
// slice of a 1-D tensor (perturbed when trainable).
void add_bias_cols(const Weight& bias, const Perturbation& p, size_t m, size_t n, size_t n0, size_t cols, float* y) {
  const float* b = weight_rows(bias, 0, 1, p, thread_scratch(n, 1)) + n0;
  for (size_t r = 0; r < m; ++r) {
    float* yr = y + r * n + n0;
    for (size_t j = 0; j < cols; ++j) yr[j] += b[j];
  }
}

// Rows of W per task on the packed path: a multiple of 32 (the AVX-512 panel), 96 Ki floats of W (128
// rows at K = 768) or, on a core whose L2 holds more, up to half its L2 and 128 rows; halved until every
// thread has two tiles. Only the traversal changes with it, never an output's bytes. Half of a 2 MiB L2
// gives the down projection (K = 2 048) 128 rows instead of 32: 0.80× the time in the shoot-out on the
// Xeon of session 49 (bench/gemm_shootout.cpp, NT=32 vs 128).
size_t packed_tile_rows(size_t n, size_t k, size_t threads) {
  const size_t kk = std::max<size_t>(k, 1);
  const size_t by_l2 = std::min<size_t>(128, gemm::l2_cache_bytes() / 2 / (kk * sizeof(float)) / 32 * 32);
  size_t rows = std::max<size_t>({32, (size_t{3} << 15) / kk / 32 * 32, by_l2});
  while (rows > 32 && (n + rows - 1) / rows < 2 * threads) rows = std::max<size_t>(32, rows / 2 / 32 * 32);
  return std::min(rows, n);
}

// linear_base's packed path from X already packed (xp): each task packs and multiplies its tile of W rows.
// pool: null when the work is too small to share (the caller decides).
void multiply_packed_input(ThreadPool* pool, gemm::Path path, const float* xp, size_t m, size_t k, const Weight& w,
                           const Weight* bias, const Perturbation& p, float* y) {
  const size_t n = w.rows();
  const size_t threads = pool ? static_cast<size_t>(pool->size()) : 1;
  const size_t nt = packed_tile_rows(n, k, threads);
  parallel_for(pool, (n + nt - 1) / nt, [&](size_t t) {
    const size_t n0 = t * nt, rows = std::min(nt, n - n0);
    const float* wt = weight_rows(w, n0, rows, p, thread_scratch(rows * k, 0));
    gemm::multiply_tile(path, xp, m, k, wt, rows, thread_scratch(gemm::tile_scratch_floats(path, rows, k), 9), y + n0, n);
    if (bias != nullptr) add_bias_cols(*bias, p, m, n, n0, rows, y);
  });
}

void linear_base(ThreadPool* pool, const float* x, size_t m, size_t k, const Weight& w, const Weight* bias,
                 const Perturbation& p, float* y) {
  const size_t n = w.rows();
  const bool frozen_direct = direct_kernel_type(w.dtype) && !(p.active && w.trainable);
  if (frozen_direct && (w.packed != nullptr || m <= kQuantDirectMaxRows)) {
    if (w.packed != nullptr) linear_packed(pool, x, m, k, w, y);
    else linear_quantized(pool, x, m, k, w, y);
    if (bias != nullptr) add_bias_cols(*bias, p, m, n, 0, n, y);
    return;
  }
  if (m * n * k < (size_t{1} << 17)) pool = nullptr;  // waking threads costs more than the work
  const gemm::Path path = gemm::chosen_path();
  if (path != gemm::Path::kEigen && m >= gemm::kMinRows) {
    // Own packed kernels: X packed once here, each task packs and multiplies its tile of W rows.
    float* xp = thread_scratch(gemm::packed_x_floats(path, m, k), 10);
    pack_x_parallel(pool, path, x, m, k, xp);
    multiply_packed_input(pool, path, xp, m, k, w, bias, p, y);
    return;
  }
  const size_t nt = tile_rows(n, k);
  const size_t tiles = (n + nt - 1) / nt;
  ConstStridedMat xm(x, static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(k), Eigen::OuterStride<>(k));
  parallel_for(pool, tiles, [&](size_t t) {
    const size_t n0 = t * nt, rows = std::min(nt, n - n0);
    const float* wt = weight_rows(w, n0, rows, p, thread_scratch(rows * k, 0));
    ConstStridedMat wm(wt, static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(k), Eigen::OuterStride<>(k));
    StridedMat ym(y + n0, static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(rows), Eigen::OuterStride<>(n));
    ym.noalias() = xm * wm.transpose();
    if (bias != nullptr) add_bias_cols(*bias, p, m, n, n0, rows, y);
  });
}

// Columns [n0, n0 + cols) of an in × out weight [k, n] as a [k, cols] tile in the thread's scratch (slot
// 0), converted to float and perturbed when the pass perturbs it (z indexed by the element's place in W).
const float* in_out_tile(const Weight& w, const Perturbation& p, size_t n0, size_t cols, size_t k) {
  const size_t n = w.cols();
  const bool all_rows = p.active && w.trainable;
  float* tile = thread_scratch(k * cols, 0);
  for (size_t r = 0; r < k; ++r) {
    const size_t start = r * n + n0;
    float* dst = tile + r * cols;
    const bool perturb = all_rows && w.row_trains(r);
    if (w.dtype == DType::kF32) {
      const float* src = static_cast<const float*>(w.data) + start;
      if (perturb) add_scaled_z(p.dist, p.seed, w.tag, start, cols, p.scale * w.z_scale, src, dst);
      else std::copy_n(src, cols, dst);
    } else {
      convert_to_f32(w.dtype, static_cast<const uint8_t*>(w.data) + dtype_bytes(w.dtype, start), cols, dst);
      if (perturb) add_scaled_z(p.dist, p.seed, w.tag, start, cols, p.scale * w.z_scale, dst, dst);
    }
  }
  return tile;
}

void linear_in_out_base(ThreadPool* pool, const float* x, size_t m, size_t k, const Weight& w, const Weight* bias,
                        const Perturbation& p, float* y) {
  const size_t n = w.cols();
  if (m * n * k < (size_t{1} << 17)) pool = nullptr;
  const gemm::Path path = gemm::chosen_path();
  if (path != gemm::Path::kEigen && m >= gemm::kMinRows) {  // own packed kernels, as linear_base
    float* xp = thread_scratch(gemm::packed_x_floats(path, m, k), 10);
    pack_x_parallel(pool, path, x, m, k, xp);
    const size_t nt = packed_tile_rows(n, k, pool ? static_cast<size_t>(pool->size()) : 1);
    parallel_for(pool, (n + nt - 1) / nt, [&](size_t t) {
      const size_t n0 = t * nt, cols = std::min(nt, n - n0);
      // Stored floats the pass does not perturb are read in place; others through a converted tile.
      const bool in_place = w.dtype == DType::kF32 && !(p.active && w.trainable);
      const float* tile = in_place ? static_cast<const float*>(w.data) + n0 : in_out_tile(w, p, n0, cols, k);
      gemm::multiply_tile_in_out(path, xp, m, k, tile, in_place ? n : cols, cols,
                                 thread_scratch(gemm::tile_scratch_floats(path, cols, k), 9), y + n0, n);
      if (bias != nullptr) add_bias_cols(*bias, p, m, n, n0, cols, y);
    });
    return;
  }
  size_t nt = std::max<size_t>(64, (size_t{1} << 16) / std::max<size_t>(k, 1)) / 16 * 16;
  while (nt > 16 && (n + nt - 1) / nt < kEigenTasks) nt /= 2;  // by shape, not threads (tile_rows)
  nt = std::min(nt, n);
  const size_t tiles = (n + nt - 1) / nt;
  ConstStridedMat xm(x, static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(k), Eigen::OuterStride<>(k));
  parallel_for(pool, tiles, [&](size_t t) {
    const size_t n0 = t * nt, cols = std::min(nt, n - n0);
    ConstStridedMat wm(in_out_tile(w, p, n0, cols, k), static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(cols),
                       Eigen::OuterStride<>(cols));
    StridedMat ym(y + n0, static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(cols), Eigen::OuterStride<>(n));
    ym.noalias() = xm * wm;
    if (bias != nullptr) add_bias_cols(*bias, p, m, n, n0, cols, y);
  });
}

}  // namespace

void pack_x_parallel(ThreadPool* pool, gemm::Path path, const float* x, size_t m, size_t k, float* packed) {
  // Packing 1 024 rows on one thread left the other idle for ~1.5 % of a 2-thread ZO step of the 110M model.
  const size_t mr = gemm::row_block(path);
  const size_t threads = pool ? static_cast<size_t>(pool->size()) : 1;
  const size_t tasks = m >= 16 * mr ? threads : 1;
  const size_t per = ((m + mr - 1) / mr + tasks - 1) / tasks * mr;
  parallel_for(tasks > 1 ? pool : nullptr, tasks, [&](size_t t) {
    const size_t r0 = t * per;
    if (r0 < m) gemm::pack_x(path, x + r0 * k, std::min(per, m - r0), k, packed + r0 * k);
  });
}

void linear(ThreadPool* pool, const float* x, size_t m, size_t k, const Weight& w, const Weight* bias,
            const Perturbation& p, float* y) {
  linear_base(pool, x, m, k, w, bias, p, y);
  if (w.lora_a != nullptr) add_lora_term(pool, x, m, k, w, p, w.rows(), y);
  if (w.added_bias != nullptr) add_bias_cols(*w.added_bias, p, m, w.rows(), 0, w.rows(), y);
}

void linear_in_out(ThreadPool* pool, const float* x, size_t m, size_t k, const Weight& w, const Weight* bias,
                   const Perturbation& p, float* y) {
  linear_in_out_base(pool, x, m, k, w, bias, p, y);
  if (w.lora_a != nullptr) add_lora_term(pool, x, m, k, w, p, w.cols(), y);
  if (w.added_bias != nullptr) add_bias_cols(*w.added_bias, p, m, w.cols(), 0, w.cols(), y);
}

namespace {

// Σ f(i) for i < d in double over four interleaved partial sums, added in a fixed order (the same bytes
// on every build): one running sum made each row of a norm wait on a chain of d double additions.
template <class F>
double sum4(size_t d, F&& f) {
  double part[4] = {0, 0, 0, 0};
  size_t i = 0;
  for (; i + 4 <= d; i += 4)
    for (size_t l = 0; l < 4; ++l) part[l] += f(i + l);
  for (size_t l = 0; i < d; ++i, ++l) part[l] += f(i);
  return (part[0] + part[1]) + (part[2] + part[3]);
}

// sum4 of the squares of R rows of x (row stride d) side by side: each row's four partial sums as sum4
// takes them (so its bytes), the R rows' chains overlapping (one row at a time waited on its own chain).
template <size_t R>
void sum_squares_rows(const float* x, size_t d, double* out) {
#if defined(__AVX2__) && defined(__FMA__)
  // The four partial sums in one register per row (left to itself the compiler gathered across rows).
  // v * v is exact in double, so the FMA rounds as the scalar sum does.
  if (d % 4 == 0) {
    __m256d acc[R];
    for (size_t r = 0; r < R; ++r) acc[r] = _mm256_setzero_pd();
    for (size_t i = 0; i < d; i += 4)
      for (size_t r = 0; r < R; ++r) {
        const __m256d v = _mm256_cvtps_pd(_mm_loadu_ps(x + r * d + i));
        acc[r] = _mm256_fmadd_pd(v, v, acc[r]);
      }
    for (size_t r = 0; r < R; ++r) {
      alignas(32) double part[4];
      _mm256_store_pd(part, acc[r]);
      out[r] = (part[0] + part[1]) + (part[2] + part[3]);
    }
    return;
  }
#endif
  double part[R][4] = {};
  size_t i = 0;
  for (; i + 4 <= d; i += 4)
    for (size_t r = 0; r < R; ++r)
      for (size_t l = 0; l < 4; ++l) {
        const double v = x[r * d + i + l];
        part[r][l] += v * v;
      }
  for (size_t l = 0; i < d; ++i, ++l)
    for (size_t r = 0; r < R; ++r) {
      const double v = x[r * d + i];
      part[r][l] += v * v;
    }
  for (size_t r = 0; r < R; ++r) out[r] = (part[r][0] + part[r][1]) + (part[r][2] + part[r][3]);
}

}  // namespace

void rms_norm(ThreadPool* pool, const float* x, size_t m, size_t d, const Weight& gamma, float eps,
              const Perturbation& p, float* out, float offset) {
  const float* g = weight_rows(gamma, 0, 1, p, thread_scratch(d, 2));
  if (offset != 0.0f) {  // Gemma's (1 + w): the stored (and perturbed) weight, shifted once per call
    float* shifted = thread_scratch(d, 3);
    for (size_t i = 0; i < d; ++i) shifted[i] = g[i] + offset;
    g = shifted;
  }
  auto finish = [&](size_t r, double squares) {
    const float* xr = x + r * d;
    float* o = out + r * d;
    const float inv = 1.0f / std::sqrt(static_cast<float>(squares / static_cast<double>(d)) + eps);
    for (size_t i = 0; i < d; ++i) o[i] = g[i] * (xr[i] * inv);
  };
  // Rows four at a time (their sums first: out may be x, and a row is read whole before it is written).
  parallel_row_ranges(pool, m, 64, [&](size_t r0, size_t r1) {
    size_t r = r0;
    for (; r + 4 <= r1; r += 4) {
      double squares[4];
      sum_squares_rows<4>(x + r * d, d, squares);
      for (size_t j = 0; j < 4; ++j) finish(r + j, squares[j]);
    }
    for (; r < r1; ++r) {
      double squares;
      sum_squares_rows<1>(x + r * d, d, &squares);
      finish(r, squares);
    }
  });
}

void layer_norm(ThreadPool* pool, const float* x, size_t m, size_t d, const Weight& gamma, const Weight* beta,
                float eps, const Perturbation& p, float* out) {
  const float* g = weight_rows(gamma, 0, 1, p, thread_scratch(d, 2));
  const float* b = beta ? weight_rows(*beta, 0, 1, p, thread_scratch(d, 3)) : nullptr;
  parallel_rows(pool, m, 64, [&](size_t r) {
    const float* xr = x + r * d;
    float* o = out + r * d;
    const double mean = sum4(d, [xr](size_t i) { return static_cast<double>(xr[i]); }) / static_cast<double>(d);
    const double var = sum4(d, [xr, mean](size_t i) {
                         const double c = xr[i] - mean;
                         return c * c;
                       }) / static_cast<double>(d);
    const float inv = static_cast<float>(1.0 / std::sqrt(var + eps));
    const float mu = static_cast<float>(mean);
    for (size_t i = 0; i < d; ++i) o[i] = (xr[i] - mu) * inv * g[i] + (b ? b[i] : 0.0f);
  });
}

void RopeTable::ensure(const int32_t* pos, size_t m, const float* inv_freq, size_t h) {
  if (h != half || !std::equal(inv_freq, inv_freq + h, inv.begin(), inv.end())) {
    half = h;
    positions = 0;
    cs.clear();
    inv.assign(inv_freq, inv_freq + h);
  }
  size_t need = positions;
  for (size_t r = 0; r < m; ++r)
    if (pos[r] >= 0) need = std::max(need, static_cast<size_t>(pos[r]) + 1);
  if (need <= positions) return;
  cs.resize(need * 2 * half);
  for (size_t p = positions; p < need; ++p) {
    float* row = cs.data() + p * 2 * half;
    for (size_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(p) * inv_freq[i];
      row[i] = std::cos(angle);
      row[half + i] = std::sin(angle);
    }
  }
  positions = need;
}

namespace {

// One row's heads (2 * half floats each) rotated by the angles whose cosines and sines are c[0, half) and
// s[0, half).
inline void rotate_heads(float* x, size_t heads, size_t half, const float* c, const float* s) {
  for (size_t h = 0; h < heads; ++h) {
    float* v = x + h * 2 * half;
    for (size_t i = 0; i < half; ++i) {
      const float a = v[i], b = v[i + half];
      v[i] = a * c[i] - b * s[i];
      v[i + half] = b * c[i] + a * s[i];
    }
  }
}

// rotate_heads with the head width fixed at compile time and the angles copied to the stack (so they
// cannot alias x): each head is a few vector operations. The loop over the heads within each lane index
// ran scalar: 4 % of a stories260K forward.
template <size_t H>
void rope_row(float* x, size_t heads, const float* cos_in, const float* sin_in) {
  float c[H], s[H];
  std::copy_n(cos_in, H, c);
  std::copy_n(sin_in, H, s);
  rotate_heads(x, heads, H, c, s);
}

void rope_row_any(float* x, size_t heads, size_t half, const float* c, const float* s) {
  switch (half) {
    case 4: return rope_row<4>(x, heads, c, s);
    case 8: return rope_row<8>(x, heads, c, s);
    case 16: return rope_row<16>(x, heads, c, s);
    case 32: return rope_row<32>(x, heads, c, s);
    case 64: return rope_row<64>(x, heads, c, s);
    default: return rotate_heads(x, heads, half, c, s);
  }
}

}  // namespace

void rope(float* x, size_t m, size_t heads, size_t hd, const int32_t* positions, const RopeTable& table) {
  const size_t half = hd / 2;
  if (table.half != half) std::abort();  // internal invariant: the model builds its table for its head width
  std::vector<float> computed;
  for (size_t r = 0; r < m; ++r) {
    const int32_t pr = positions[r];
    const bool listed = pr >= 0 && static_cast<size_t>(pr) < table.positions;
    const float* row = listed ? table.cs.data() + static_cast<size_t>(pr) * 2 * half : nullptr;
    if (row == nullptr) {  // a position the table was not grown to (never, when ensure() ran on these positions)
      computed.resize(2 * half);
      for (size_t i = 0; i < half; ++i) {
        const float angle = static_cast<float>(pr) * table.inv[i];
        computed[i] = std::cos(angle);
        computed[half + i] = std::sin(angle);
      }
      row = computed.data();
    }
    rope_row_any(x + r * heads * hd, heads, half, row, row + half);
  }
}

void rope(float* x, size_t m, size_t heads, size_t hd, const int32_t* positions, const float* inv_freq) {
  RopeTable table;
  table.ensure(positions, m, inv_freq, hd / 2);
  rope(x, m, heads, hd, positions, table);
}

namespace {

// Heads this narrow (stories260K: 8) make a GEMM per block mostly packing overhead; they take direct loops.
bool small_head(size_t hd) { return hd == 8 || hd == 16; }

// NQ consecutive queries of attention_small_heads at once: each key block of kt is loaded once for all of
// them and their exp and accumulation chains run side by side. Lanes past a query's last visible key are
// masked to -inf (exp gives 0), so the blocks are whole 16-key blocks throughout: the same bytes from any
// buffer, whichever group a query falls in.
alignas(64) const float kTailLimit[32] = {
    INFINITY,  INFINITY,  INFINITY,  INFINITY,  INFINITY,  INFINITY,  INFINITY,  INFINITY,
    INFINITY,  INFINITY,  INFINITY,  INFINITY,  INFINITY,  INFINITY,  INFINITY,  INFINITY,
    -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY,
    -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};

// A last key block for its maximum: the scores of lanes [0, cut), -inf past them (r holds the block with
// those lanes already -inf). On x86 from the registers: reading r back right after its scalar stores
// stalled on store forwarding (a tenth of a small model's attention). kTailLimit's window is +inf on the
// kept lanes and -inf past them, and Eigen's min there returns the limit when a score is NaN, so a NaN
// past the last key stays out. NEON's min would return the NaN: arm64 reads r back.
inline Block kept_lanes(const Block& sc, const float* r, size_t cut) {
#if defined(__aarch64__) || defined(__ARM_NEON)
  (void)sc, (void)cut;
  return Eigen::Map<const Block>(r);
#else
  (void)r;
  return Eigen::Map<const Block>(kTailLimit + 16 - cut).min(sc);
#endif
}

template <size_t HD, size_t NQ>
void attention_query_group(const float* const* qt, const size_t* visible, const float* kt, size_t padded, const float* v,
                           size_t kv_stride, float scale, float* const* rows, float* const* ot) {
  using Lanes = Eigen::Array<float, HD, 1>;
  size_t vmax = 0;
  for (size_t g = 0; g < NQ; ++g) vmax = std::max(vmax, visible[g]);
  Block mb[NQ];
  float qs[NQ][HD];  // the scaled queries, once rather than once per key block
  for (size_t g = 0; g < NQ; ++g) {
    mb[g] = Block::Constant(-INFINITY);
    for (size_t d = 0; d < HD; ++d) qs[g][d] = qt[g][d] * scale;
  }
  for (size_t j0 = 0; j0 < vmax; j0 += 16) {
    Block sc[NQ];
    for (size_t g = 0; g < NQ; ++g) sc[g] = Block::Zero();
    for (size_t d = 0; d < HD; ++d) {
      const Block kd = Eigen::Map<const Block>(kt + d * padded + j0);
      for (size_t g = 0; g < NQ; ++g) sc[g] += qs[g][d] * kd;
    }
    for (size_t g = 0; g < NQ; ++g) {
      float* r = rows[g] + j0;
      Eigen::Map<Block>{r} = sc[g];
      if (visible[g] >= j0 + 16) {
        mb[g] = mb[g].max(sc[g]);
      } else {  // the query's last block: lanes past its last key to -inf (scalar; a vector select of this
                // width compiles to a compare-and-branch per lane, which cost a third of the kernel)
        const size_t cut = visible[g] > j0 ? visible[g] - j0 : 0;
        for (size_t l = cut; l < 16; ++l) r[l] = -INFINITY;
        mb[g] = mb[g].max(kept_lanes(sc[g], r, cut));
      }
    }
  }
  // The exp pass block by block with the queries side by side: one query at a time left its exp's
  // dependency chain unhidden (half of the kernel's time).
  float mx[NQ], inv[NQ];
  Block acc[NQ];
  for (size_t g = 0; g < NQ; ++g) {
    mx[g] = mb[g].maxCoeff();
    acc[g] = Block::Zero();
  }
  for (size_t j0 = 0; j0 < vmax; j0 += 16) {
    for (size_t g = 0; g < NQ; ++g) {
      Eigen::Map<Block> blk(rows[g] + j0);
      blk = exp_block(blk - mx[g]);
      acc[g] += blk;
    }
  }
  for (size_t g = 0; g < NQ; ++g) inv[g] = 1.0f / acc[g].sum();
  Lanes out[NQ][2];
  for (size_t g = 0; g < NQ; ++g) out[g][0] = out[g][1] = Lanes::Zero();
  size_t i = 0;
  for (; i + 2 <= vmax; i += 2) {
    const Lanes v0 = Eigen::Map<const Lanes>(v + i * kv_stride), v1 = Eigen::Map<const Lanes>(v + (i + 1) * kv_stride);
    for (size_t g = 0; g < NQ; ++g) {
      out[g][0] += rows[g][i] * v0;
      out[g][1] += rows[g][i + 1] * v1;
    }
  }
  if (i < vmax) {
    const Lanes v0 = Eigen::Map<const Lanes>(v + i * kv_stride);
    for (size_t g = 0; g < NQ; ++g) out[g][0] += rows[g][i] * v0;
  }
  for (size_t g = 0; g < NQ; ++g) {
    Eigen::Map<Lanes> dst(ot[g]);
    dst = (out[g][0] + out[g][1]) * inv[g];
  }
}

// Queries taken side by side: eight where the vector registers hold their scores, exps and outputs
// (AVX-512's 32), four elsewhere and in the AVX2 kernels.
#if defined(__AVX512F__)
constexpr size_t kEigenGroup = 8;
#else
constexpr size_t kEigenGroup = 4;
#endif
constexpr size_t kMaxGroup = 8;

// n consecutive queries (n ≤ kMaxGroup) of one block: whole groups where the route has one of n, else in
// fours and ones. Every query gives the same bytes whichever way it is grouped.
// vec: the AVX2 kernels (a portable build on an AVX2 CPU, kernels_avx2.h).
template <size_t HD>
void attention_queries(bool vec, size_t n, const float* const* qt, const size_t* visible, const float* kt, size_t padded,
                       const float* v, size_t kv_stride, float scale, float* const* rows, float* const* ot) {
  size_t g = 0;
  if (!vec && n == kEigenGroup) {
    attention_query_group<HD, kEigenGroup>(qt, visible, kt, padded, v, kv_stride, scale, rows, ot);
    return;
  }
  for (; g + 4 <= n; g += 4) {
    if (vec) avx2::attention_query_group(HD, 4, qt + g, visible + g, kt, padded, v, kv_stride, scale, rows + g, ot + g);
    else attention_query_group<HD, 4>(qt + g, visible + g, kt, padded, v, kv_stride, scale, rows + g, ot + g);
  }
  for (; g < n; ++g) {
    if (vec) avx2::attention_query_group(HD, 1, qt + g, visible + g, kt, padded, v, kv_stride, scale, rows + g, ot + g);
    else attention_query_group<HD, 1>(qt + g, visible + g, kt, padded, v, kv_stride, scale, rows + g, ot + g);
  }
}

// One (sequence, head, query block) of attention() for a head of HD lanes: the block's keys transposed
// once (kt[d][j], zero past the last key), then the queries a group at a time.
template <size_t HD>
void attention_small_heads(const AttentionShape& s, const float* q, size_t q_stride, const float* k, const float* v,
                           size_t kv_stride, size_t t0, size_t rows, size_t kend, float scale, float* o) {
  // Groups of queries go to a query-lane kernel: 16 at a time on AVX-512 CPUs (kernels_avx512.h; a last
  // group of 8 or more takes masked lanes), else 8 at a time on AVX2 CPUs (kernels_avx2.h; a last group of
  // 4 or more). Fewer, as in decoding, stay with the key-lane groups below.
  auto keys_seen = [&](size_t t) { return s.causal ? std::min(kend, s.past + t0 + t + 1) : kend; };  // by query t
  const bool wide = avx512::chosen(), lanes = wide || avx2::lanes_chosen();
  const size_t width = wide ? 16 : 8, min_group = wide ? avx512::kMinLaneQueries : avx2::kMinLaneQueries;
  size_t first = 0;  // queries before it went through a query-lane kernel
  if (lanes && rows >= min_group) {
    float* scratch =
        thread_scratch(wide ? avx512::lane_scratch_floats(kend) : avx2::lane_scratch_floats(kend), 11);
    size_t visible[16];
    while (rows - first >= min_group) {
      const size_t n = std::min(width, rows - first);
      for (size_t g = 0; g < n; ++g) visible[g] = keys_seen(first + g);
      const float* qf = q + first * q_stride;
      float* of = o + first * q_stride;
      if (wide) avx512::attention_query_lanes(HD, n, qf, q_stride, visible, k, v, kv_stride, scale, scratch, of);
      else avx2::attention_query_lanes(HD, n, qf, q_stride, visible, k, v, kv_stride, scale, scratch, of);
      first += n;
    }
    if (first == rows) return;
  }
  const size_t padded = (kend + 15) / 16 * 16;
  float* kt = thread_scratch(HD * padded + kMaxGroup * padded, 0);
  for (size_t d = 0; d < HD; ++d) {
    float* kd = kt + d * padded;
    for (size_t j = 0; j < kend; ++j) kd[j] = k[j * kv_stride + d];
    std::fill(kd + kend, kd + padded, 0.0f);
  }
  const float* qt[kMaxGroup];
  float* ot[kMaxGroup];
  float* score_rows[kMaxGroup];
  size_t visible[kMaxGroup];
  for (size_t g = 0; g < kMaxGroup; ++g) score_rows[g] = kt + (HD + g) * padded;
  const bool vec = avx2::preferred();
  const size_t group = vec ? 4 : kEigenGroup;
  for (size_t t = first; t < rows;) {
    const size_t n = std::min(group, rows - t);
    for (size_t g = 0; g < n; ++g) {
      qt[g] = q + (t + g) * q_stride;
      ot[g] = o + (t + g) * q_stride;
      visible[g] = keys_seen(t + g);
    }
    attention_queries<HD>(vec, n, qt, visible, kt, padded, v, kv_stride, scale, score_rows, ot);
    t += n;
  }
}

// Row t of a query block's scores (nk keys, score j is key kbeg + j) into softmax weights in place: the
// raw scores times `scale`, then exp against the row's maximum over its visible keys [first, visible)
// (16-lane blocks, the tail padded with -inf so that it adds 0), scaled to sum to 1; 0 elsewhere.
void softmax_scores_row(float* row, size_t nk, size_t first, size_t visible, float scale) {
  for (size_t j = 0; j < first; ++j) row[j] = 0.0f;
  float* live = row + first;
  const size_t n = visible - first;
  Block mb = Block::Constant(-INFINITY);
  size_t j = 0;
  for (; j + 16 <= n; j += 16) {
    Eigen::Map<Block> b(live + j);
    b *= scale;
    mb = mb.max(b);
  }
  float mx = mb.maxCoeff();
  for (; j < n; ++j) mx = std::max(mx, live[j] *= scale);
  Block acc = Block::Zero();
  for_blocks(live, n, -INFINITY, [mx, &acc](const Block& x) -> Block {
    const Block e = exp_block(x - mx);
    acc += e;
    return e;
  });
  const float inv = n > 0 ? 1.0f / acc.sum() : 0.0f;
  for (j = 0; j < n; ++j) live[j] *= inv;
  for (j = visible; j < nk; ++j) row[j] = 0.0f;
}

// One query block of one head (the general path: heads not narrow, or a window the narrow path cannot
// take): rows queries from q (row stride q_stride) at positions past + t0 …, against keys [kbeg, kend)
// whose rows start at k and v (row stride kv_stride); the output rows to o (row stride q_stride). The
// two products run on the packed GEMM kernels when the CPU has them and the block has at least
// gemm::kMinRows queries (each score and output one FMA chain, so a query's bytes do not depend on its
// block), on Eigen otherwise.
void attention_block(const AttentionShape& s, const float* q, size_t q_stride, const float* k, const float* v,
                     size_t kv_stride, size_t t0, size_t rows, size_t kbeg, size_t kend, float scale, float* o) {
  const size_t nk = kend - kbeg, hd = s.head_dim;
  const size_t window = s.causal ? s.window : 0;
  float* scores = thread_scratch(rows * nk, 0);
  const gemm::Path path = gemm::chosen_path();
  const bool packed = path != gemm::Path::kEigen && rows >= gemm::kMinRows;
  if (packed) {
    float* qp = thread_scratch(gemm::packed_x_floats(path, rows, hd), 12);
    gemm::pack_x(path, q, q_stride, rows, hd, qp);
    gemm::multiply_tile(path, qp, rows, hd, k, kv_stride, nk, thread_scratch(gemm::tile_scratch_floats(path, nk, hd), 9),
                        scores, nk);
  } else {
    ConstStridedMat qm(q, static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(hd), Eigen::OuterStride<>(q_stride));
    ConstStridedMat km(k, static_cast<Eigen::Index>(nk), static_cast<Eigen::Index>(hd), Eigen::OuterStride<>(kv_stride));
    StridedMat sm(scores, static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(nk), Eigen::OuterStride<>(nk));
    sm.noalias() = qm * km.transpose();
  }
  for (size_t t = 0; t < rows; ++t) {
    const size_t pos = s.past + t0 + t;
    const size_t visible = (s.causal ? std::min(kend, pos + 1) : kend) - kbeg;
    const size_t first = window > 0 && pos + 1 > window ? std::min(visible, pos + 1 - window - kbeg) : 0;
    softmax_scores_row(scores + t * nk, nk, first, visible, scale);
  }
  if (packed) {
    float* sp = thread_scratch(gemm::packed_x_floats(path, rows, nk), 13);
    gemm::pack_x(path, scores, rows, nk, sp);
    gemm::multiply_tile_in_out(path, sp, rows, nk, v, kv_stride, hd, thread_scratch(gemm::tile_scratch_floats(path, hd, nk), 9),
                               o, q_stride);
    return;
  }
  ConstStridedMat sm(scores, static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(nk), Eigen::OuterStride<>(nk));
  ConstStridedMat vm(v, static_cast<Eigen::Index>(nk), static_cast<Eigen::Index>(hd), Eigen::OuterStride<>(kv_stride));
  StridedMat om(o, static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(hd), Eigen::OuterStride<>(q_stride));
  om.noalias() = sm * vm;
}

}  // namespace

// Per (sequence, head, block of up to 64 queries): scores against the keys the block can see — under a
// causal mask a block ending at query t needs keys 0 .. past + t only, so a long prompt computes about half
// of the full score matrix — then the row softmax and the product with the values.
void attention(ThreadPool* pool, const AttentionShape& s, const float* q, const float* k, const float* v,
               const int32_t* key_len, float* out) {
  constexpr size_t kQueryBlock = 64;
  const size_t group = s.heads / s.kv_heads;
  const size_t q_stride = s.heads * s.head_dim, kv_stride = s.kv_heads * s.head_dim;
  const float scale = s.scale != 0.0f ? s.scale : 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  const size_t window = s.causal ? s.window : 0;
  const size_t qblocks = (s.tq + kQueryBlock - 1) / kQueryBlock;
  if (s.batch * s.heads * s.tq * s.tk * s.head_dim < (size_t{1} << 16)) pool = nullptr;
  parallel_for(pool, s.batch * s.heads * qblocks, [&](size_t task) {
    const size_t qb = task % qblocks, bh = task / qblocks;
    const size_t b = bh / s.heads, h = bh % s.heads, kvh = h / group;
    const size_t klen = std::min<size_t>(s.tk, static_cast<size_t>(key_len[b]));
    const size_t queries = s.seq_start ? klen : s.tq;  // unpadded: a sequence has as many queries as keys
    const size_t t0 = qb * kQueryBlock;
    if (t0 >= queries) return;
    const size_t rows = std::min(kQueryBlock, queries - t0);
    const size_t q_row0 = s.seq_start ? s.seq_start[b] : b * s.tq, k_row0 = s.seq_start ? s.seq_start[b] : b * s.tk;
    const size_t kend = s.causal ? std::min(klen, s.past + t0 + rows) : klen;  // keys any query of the block sees
    float* o = out + (q_row0 + t0) * q_stride + h * s.head_dim;
    // A sliding window that hides keys from some query of the block: the keys from the first one any of
    // them sees, each row's own window applied in its softmax (the narrow-head path has no lower bound).
    const size_t kbeg = window > 0 && s.past + t0 + 1 > window ? s.past + t0 + 1 - window : 0;
    if (kend <= kbeg) {  // no key visible (padded queries of a short sequence)
      for (size_t t = 0; t < rows; ++t) std::fill_n(o + t * q_stride, s.head_dim, 0.0f);
      return;
    }
    if (small_head(s.head_dim) && (window == 0 || s.past + t0 + rows <= window)) {
      auto* fn = s.head_dim == 8 ? &attention_small_heads<8> : &attention_small_heads<16>;
      fn(s, q + (q_row0 + t0) * q_stride + h * s.head_dim, q_stride,
                            k + k_row0 * kv_stride + kvh * s.head_dim, v + k_row0 * kv_stride + kvh * s.head_dim, kv_stride,
                            t0, rows, kend, scale, o);
      return;
    }
    const float* qrows = q + (q_row0 + t0) * q_stride + h * s.head_dim;
    const float* krows = k + (k_row0 + kbeg) * kv_stride + kvh * s.head_dim;
    const float* vrows = v + (k_row0 + kbeg) * kv_stride + kvh * s.head_dim;
    attention_block(s, qrows, q_stride, krows, vrows, kv_stride, t0, rows, kbeg, kend, scale, o);
  });
}

namespace {

// GELU with the tanh approximation ("gelu_new", "gelu_pytorch_tanh") on 16 lanes, Eigen's vectorized tanh.
const auto gelu_tanh_block = [](const Block& v) -> Block {
  return 0.5f * v * (1.0f + (0.7978845608028654f * (v + 0.044715f * v * v * v)).tanh());
};

// gate[i] = silu(gate[i]) * up[i] on one thread; element by element the same bytes wherever a span
// starts or ends (the vector paths pad their tails and compute them like the body).
void silu_mul_span(float* gate, const float* up, size_t n) {
  if (avx2::preferred()) {
    avx2::silu_mul(gate, up, n);
    return;
  }
  // One pass: the product with up right after the block's SiLU (a second pass over the span cost as much
  // as the SiLU itself on stories260K), the tail padded and computed like the body.
  const auto silu = [](const Block& g, const Block& u) -> Block { return g / (1.0f + exp_block(-g)) * u; };
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    Eigen::Map<Block> g(gate + i);
    g = silu(Block(g), Eigen::Map<const Block>(up + i));
  }
  if (i < n) {
    Block g = Block::Zero(), u = Block::Zero();
    std::copy(gate + i, gate + n, g.data());
    std::copy(up + i, up + n, u.data());
    g = silu(g, u);
    std::copy(g.data(), g.data() + (n - i), gate + i);
  }
}

// gate[i] = gelu_tanh(gate[i]) * up[i] (GeGLU, "gelu_pytorch_tanh") on one thread, 16 lanes at a time
// with Eigen's vectorized tanh (the tail padded and computed like the body: the same bytes wherever a
// span starts or ends).
void gelu_tanh_mul_span(float* gate, const float* up, size_t n) {
  for_blocks(gate, n, 0.0f, gelu_tanh_block);
  for (size_t i = 0; i < n; ++i) gate[i] *= up[i];
}

void gated_mul_span(GateActivation act, float* gate, const float* up, size_t n) {
  if (act == GateActivation::kGeluTanh) gelu_tanh_mul_span(gate, up, n);
  else silu_mul_span(gate, up, n);
}

}  // namespace

void gated_mul(ThreadPool* pool, GateActivation act, float* gate, const float* up, size_t n) {
  const size_t chunk = 1 << 14;
  parallel_for(pool, (n + chunk - 1) / chunk, [&](size_t c) {
    const size_t i0 = c * chunk, i1 = std::min(n, i0 + chunk);
    gated_mul_span(act, gate + i0, up + i0, i1 - i0);
  });
}

void silu_mul(ThreadPool* pool, float* gate, const float* up, size_t n) {
  const size_t chunk = 1 << 14;
  parallel_for(pool, (n + chunk - 1) / chunk, [&](size_t c) {
    const size_t i0 = c * chunk, i1 = std::min(n, i0 + chunk);
    silu_mul_span(gate + i0, up + i0, i1 - i0);
  });
}

namespace {

// True when linear() of m rows through w takes linear_base's float GEMM and adds nothing after it (no
// adapter, no added bias, no direct quantized / half kernel).
bool plain_float_gemm(const Weight& w, const Perturbation& p, size_t m) {
  const bool direct = direct_kernel_type(w.dtype) && !(p.active && w.trainable) && (w.packed != nullptr || m <= kQuantDirectMaxRows);
  return w.lora_a == nullptr && w.added_bias == nullptr && !direct;
}

}  // namespace

void linear_shared_input(ThreadPool* pool, const float* x, size_t m, size_t k, const LinearOutput* outs, size_t count,
                         const Perturbation& p) {
  constexpr size_t kMaxOutputs = 8;
  if (count > kMaxOutputs) throw std::invalid_argument("linear_shared_input: more than 8 weights");
  const gemm::Path path = gemm::chosen_path();
  bool fused = path != gemm::Path::kEigen && m >= gemm::kMinRows && count > 1;
  size_t work = 0;
  for (size_t i = 0; i < count; ++i) {
    fused = fused && plain_float_gemm(*outs[i].w, p, m);
    work += m * outs[i].w->rows() * k;
  }
  if (!fused) {
    for (size_t i = 0; i < count; ++i) linear(pool, x, m, k, *outs[i].w, outs[i].bias, p, outs[i].y);
    return;
  }
  // linear_base's packed path with X packed once; the tasks are every weight's tiles, weight after weight.
  if (work < (size_t{1} << 17)) pool = nullptr;
  const size_t threads = pool ? static_cast<size_t>(pool->size()) : 1;
  float* xp = thread_scratch(gemm::packed_x_floats(path, m, k), 10);
  pack_x_parallel(pool, path, x, m, k, xp);
  size_t tile_rows_of[kMaxOutputs], first_task[kMaxOutputs + 1] = {0};
  for (size_t i = 0; i < count; ++i) {
    const size_t n = outs[i].w->rows();
    tile_rows_of[i] = packed_tile_rows(n, k, threads);
    first_task[i + 1] = first_task[i] + (n + tile_rows_of[i] - 1) / tile_rows_of[i];
  }
  parallel_for(pool, first_task[count], [&](size_t task) {
    size_t i = 0;
    while (task >= first_task[i + 1]) ++i;
    const LinearOutput& o = outs[i];
    const size_t n = o.w->rows(), nt = tile_rows_of[i];
    const size_t n0 = (task - first_task[i]) * nt, rows = std::min(nt, n - n0);
    const float* wt = weight_rows(*o.w, n0, rows, p, thread_scratch(rows * k, 0));
    gemm::multiply_tile(path, xp, m, k, wt, rows, thread_scratch(gemm::tile_scratch_floats(path, rows, k), 9), o.y + n0, n);
    if (o.bias != nullptr) add_bias_cols(*o.bias, p, m, n, n0, rows, o.y);
  });
}

namespace {

// Floats of linear_swiglu's gate and up products per row block: 24 KiB each.
constexpr size_t kSwigluBlockFloats = size_t{6} << 10;

// True when linear_swiglu takes its fused packed path.
bool swiglu_fuses(gemm::Path path, size_t m, const Weight& gate, const Weight* gate_bias, const Weight& up,
                  const Weight* up_bias, const Perturbation& p) {
  return path != gemm::Path::kEigen && m >= gemm::kMinRows && gate_bias == nullptr && up_bias == nullptr &&
         plain_float_gemm(gate, p, m) && plain_float_gemm(up, p, m) && up.rows() == gate.rows();
}

// linear_base's packed path for the gate and up weights at once, tile by tile: each task packs its gate and
// up tiles, then multiplies them by X a row block at a time into scratch rows of the tile's width (the
// block's two products stay in L1/L2 until they are gated: tile-wide products of all m rows went out to L3
// for a small model's FFN), gates them there and hands the block to
// `sink(r0, mv, n0, rows, g)`: rows [r0, r0 + mv) × columns [n0, n0 + rows) of h, row stride `rows`.
// (With h as the GEMM's output, h's row stride — 8 KiB for a width of 2 048 — mapped a tile's rows onto a
// few L2 sets, and the gated product's pass over them ran at half speed.)
template <class Sink>
void swiglu_packed(ThreadPool* pool, gemm::Path path, const float* x, size_t m, size_t k, const Weight& gate,
                   const Weight& up, const Perturbation& p, GateActivation act, Sink&& sink) {
  const size_t n = gate.rows();
  if (m * n * k < (size_t{1} << 17)) pool = nullptr;
  const size_t threads = pool ? static_cast<size_t>(pool->size()) : 1;
  float* xp = thread_scratch(gemm::packed_x_floats(path, m, k), 10);
  pack_x_parallel(pool, path, x, m, k, xp);
  const size_t nt = packed_tile_rows(n, k, threads), mr = gemm::row_block(path);
  parallel_for(pool, (n + nt - 1) / nt, [&](size_t t) {
    const size_t n0 = t * nt, rows = std::min(nt, n - n0);
    float* gate_panels = thread_scratch(gemm::tile_scratch_floats(path, rows, k), 9);
    gemm::pack_w(path, weight_rows(gate, n0, rows, p, thread_scratch(rows * k, 0)), k, rows, k, gate_panels);
    float* up_panels = thread_scratch(gemm::tile_scratch_floats(path, rows, k), 15);
    gemm::pack_w(path, weight_rows(up, n0, rows, p, thread_scratch(rows * k, 0)), k, rows, k, up_panels);
    const size_t mb = std::max(mr, kSwigluBlockFloats / std::max<size_t>(rows, 1) / mr * mr);
    float* g = thread_scratch(mb * rows, 14);
    float* u = thread_scratch(mb * rows, 11);
    for (size_t r0 = 0; r0 < m; r0 += mb) {
      const size_t mv = std::min(mb, m - r0);
      gemm::multiply_panels(path, xp + r0 * k, mv, k, gate_panels, rows, g, rows);
      gemm::multiply_panels(path, xp + r0 * k, mv, k, up_panels, rows, u, rows);
      gated_mul_span(act, g, u, mv * rows);  // the block is contiguous: one span, one padded tail
      sink(r0, mv, n0, rows, g);
    }
  });
}

}  // namespace

void linear_swiglu(ThreadPool* pool, const float* x, size_t m, size_t k, const Weight& gate, const Weight* gate_bias,
                   const Weight& up, const Weight* up_bias, const Perturbation& p, float* h, std::vector<float>* up_buffer,
                   GateActivation act) {
  const size_t n = gate.rows();
  const gemm::Path path = gemm::chosen_path();
  if (!swiglu_fuses(path, m, gate, gate_bias, up, up_bias, p)) {
    if (up_buffer->size() < m * n) up_buffer->resize(m * n);
    linear(pool, x, m, k, gate, gate_bias, p, h);
    linear(pool, x, m, k, up, up_bias, p, up_buffer->data());
    gated_mul(pool, act, h, up_buffer->data(), m * n);
    return;
  }
  swiglu_packed(pool, path, x, m, k, gate, up, p, act, [&](size_t r0, size_t mv, size_t n0, size_t rows, const float* g) {
    for (size_t r = 0; r < mv; ++r) std::copy_n(g + r * rows, rows, h + (r0 + r) * n + n0);
  });
}

void gated_mlp(ThreadPool* pool, const float* x, size_t m, size_t k, const Weight& gate, const Weight* gate_bias,
               const Weight& up, const Weight* up_bias, const Weight& down, const Weight* down_bias, const Perturbation& p,
               float* h, std::vector<float>* up_buffer, GateActivation act, float* y) {
  const size_t n = gate.rows();
  const gemm::Path path = gemm::chosen_path();
  if (!swiglu_fuses(path, m, gate, gate_bias, up, up_bias, p) || !plain_float_gemm(down, p, m) || down.cols() != n) {
    linear_swiglu(pool, x, m, k, gate, gate_bias, up, up_bias, p, h, up_buffer, act);
    linear(pool, h, m, n, down, down_bias, p, y);
    return;
  }
  // The gated rows go straight into the down projection's packed input (slot 16; each task its own
  // columns), as pack_x would have laid h out.
  float* hp = thread_scratch(gemm::packed_x_floats(path, m, n), 16);
  swiglu_packed(pool, path, x, m, k, gate, up, p, act, [&](size_t r0, size_t mv, size_t n0, size_t rows, const float* g) {
    gemm::pack_x_columns(path, g, rows, mv, rows, n, n0, hp + r0 * n);
  });
  const size_t d = down.rows();
  multiply_packed_input(m * d * n < (size_t{1} << 17) ? nullptr : pool, path, hp, m, n, down, down_bias, p, y);
}

// Chunks of 2^14 (a multiple of the 16-lane block): every element the same bytes whatever the threads.
void gelu_tanh(ThreadPool* pool, float* x, size_t n) {
  const size_t chunk = 1 << 14;
  parallel_for(pool, (n + chunk - 1) / chunk, [&](size_t c) {
    const size_t i0 = c * chunk, i1 = std::min(n, i0 + chunk);
    for_blocks(x + i0, i1 - i0, 0.0f, gelu_tanh_block);
  });
}

// Eigen's vectorized erf (SpecialFunctions), 16 lanes at a time, chunks as gelu_tanh's.
void gelu_erf(ThreadPool* pool, float* x, size_t n) {
  const size_t chunk = 1 << 14;
  parallel_for(pool, (n + chunk - 1) / chunk, [&](size_t c) {
    const size_t i0 = c * chunk, i1 = std::min(n, i0 + chunk);
    for_blocks(x + i0, i1 - i0, 0.0f, [](const Block& v) -> Block { return 0.5f * v * (1.0f + (v * 0.7071067811865476f).erf()); });
  });
}

void relu(ThreadPool* pool, float* x, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void softmax_rows(float* x, size_t m, size_t n) {
  for (size_t r = 0; r < m; ++r) {
    float* row = x + r * n;
    float mx = -INFINITY;
    for (size_t j = 0; j < n; ++j) mx = std::max(mx, row[j]);
    float sum = 0;
    for (size_t j = 0; j < n; ++j) {
      row[j] = std::exp(row[j] - mx);
      sum += row[j];
    }
    for (size_t j = 0; j < n; ++j) row[j] /= sum;
  }
}

namespace {

// logsumexp_fold of R rows (row stride n) side by side: each row takes the instructions it takes alone,
// but the R chains of one row's max, exps and sums overlap (one row of a 128-word head tile at a time
// waited on its own chain: 5 % of a stories260K forward).
template <size_t R>
void fold_rows(const float* x, size_t n, float* max, float* sum) {
  Block mb[R];
  float m[R];
  for (size_t r = 0; r < R; ++r) mb[r] = Block::Constant(max[r]);
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (size_t r = 0; r < R; ++r) mb[r] = mb[r].max(Eigen::Map<const Block>(x + r * n + i));
  for (size_t r = 0; r < R; ++r) {
    m[r] = mb[r].maxCoeff();
    for (size_t j = i; j < n; ++j) m[r] = std::max(m[r], x[r * n + j]);
  }
  Block acc[R];
  for (size_t r = 0; r < R; ++r) acc[r] = Block::Zero();
  for (i = 0; i + 16 <= n; i += 16)
    for (size_t r = 0; r < R; ++r) acc[r] += exp_block(Eigen::Map<const Block>(x + r * n + i) - m[r]);
  if (i < n)
    for (size_t r = 0; r < R; ++r) {
      Block b = Block::Constant(-std::numeric_limits<float>::infinity());
      std::copy(x + r * n + i, x + r * n + n, b.data());
      acc[r] += exp_block(b - m[r]);
    }
  for (size_t r = 0; r < R; ++r) {
    sum[r] = sum[r] * std::exp(max[r] - m[r]) + acc[r].sum();
    max[r] = m[r];
  }
}

}  // namespace

void logsumexp_fold(const float* row, size_t n, float* max, float* sum) { logsumexp_fold_rows(row, 1, n, max, sum); }

void logsumexp_fold_rows(const float* x, size_t rows, size_t n, float* max, float* sum) {
  if (n == 0) return;
  if (avx2::preferred()) {
    avx2::logsumexp_fold_rows(x, rows, n, max, sum);
    return;
  }
  size_t r = 0;
  for (; r + 4 <= rows; r += 4) fold_rows<4>(x + r * n, n, max + r, sum + r);
  for (; r < rows; ++r) fold_rows<1>(x + r * n, n, max + r, sum + r);
}

}  // namespace pocketllm
