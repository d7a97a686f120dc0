#include "kernels_avx2.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "pocketllm/common/cpu_features.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include "kernels_exp.h"
#include "simd_avx2.h"
#define PLLM_VEC_X86 1
#define PLLM_AVX2 __attribute__((target("avx2,fma")))
#endif

namespace pocketllm::avx2 {

#ifdef PLLM_VEC_X86
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// 16 lanes of +inf then 16 of -inf: the 16 floats from kTailLimit + 16 - cut keep lanes below cut under min.
alignas(32) const float kTailLimit[32] = {kInf,  kInf,  kInf,  kInf,  kInf,  kInf,  kInf,  kInf,  kInf,  kInf,  kInf,
                                          kInf,  kInf,  kInf,  kInf,  kInf,  -kInf, -kInf, -kInf, -kInf, -kInf, -kInf,
                                          -kInf, -kInf, -kInf, -kInf, -kInf, -kInf, -kInf, -kInf, -kInf, -kInf};

// exp of eight lanes: x = n ln2 + r with n = floor(x log2 e + 1/2) and ln2 split in two constants so r is
// exact, then Cephes' degree-7 polynomial for exp(r) on [-ln2/2, ln2/2] and 2^n built in the exponent
// field. Inputs are clamped to [-88, 88] so 2^n stays a normal number; lanes below -88 give 0. max(lo, x)
// and min(hi, x) return x when it is NaN (the second operand), so NaN goes through.
PLLM_AVX2 inline __m256 exp8(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-88.0f), hi = _mm256_set1_ps(88.0f);
  const __m256 xc = _mm256_min_ps(hi, _mm256_max_ps(lo, x));
  const __m256 n = _mm256_floor_ps(_mm256_fmadd_ps(xc, _mm256_set1_ps(vexp::cephes::kLog2e), _mm256_set1_ps(0.5f)));
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(vexp::cephes::kLn2Hi), xc);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(vexp::cephes::kLn2Lo), r);
  __m256 y = _mm256_set1_ps(vexp::cephes::kPoly[0]);
  for (int i = 1; i < 6; ++i) y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(vexp::cephes::kPoly[i]));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127)), 23);
  const __m256 out = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
  return _mm256_blendv_ps(out, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LT_OQ));
}

// The last n % 8 elements of x into an eight-lane buffer padded with `pad`, so every element takes the
// same instructions wherever it sits.
PLLM_AVX2 inline __m256 load_tail(const float* x, size_t n, float pad) {
  alignas(32) float b[8];
  std::fill(b, b + 8, pad);
  std::memcpy(b, x, n * sizeof(float));
  return _mm256_load_ps(b);
}

PLLM_AVX2 inline void store_tail(__m256 v, size_t n, float* out) {
  alignas(32) float b[8];
  _mm256_store_ps(b, v);
  std::memcpy(out, b, n * sizeof(float));
}

PLLM_AVX2 inline __m256 silu8(__m256 g) {
  return _mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), exp8(_mm256_sub_ps(_mm256_setzero_ps(), g))));
}

// Mirrors attention_query_group in kernels.cpp: scores of NQ queries against 16-key blocks of kt, the
// lanes past each query's last key set to -inf, exp against the row maximum, then the rows times V.
template <size_t HV, size_t NQ>
PLLM_AVX2 void query_group(const float* const* qt, const size_t* visible, const float* kt, size_t padded, const float* v,
                           size_t kv_stride, float scale, float* const* rows, float* const* ot) {
  constexpr size_t kHd = HV * 8;
  size_t vmax = 0;
  for (size_t g = 0; g < NQ; ++g) vmax = std::max(vmax, visible[g]);
  __m256 mb[NQ];
  float qs[NQ][kHd];
  for (size_t g = 0; g < NQ; ++g) {
    mb[g] = _mm256_set1_ps(-kInf);
    for (size_t d = 0; d < kHd; ++d) qs[g][d] = qt[g][d] * scale;
  }
  for (size_t j0 = 0; j0 < vmax; j0 += 16) {
    __m256 s0[NQ], s1[NQ];
    for (size_t g = 0; g < NQ; ++g) s0[g] = s1[g] = _mm256_setzero_ps();
    for (size_t d = 0; d < kHd; ++d) {
      const __m256 k0 = _mm256_loadu_ps(kt + d * padded + j0), k1 = _mm256_loadu_ps(kt + d * padded + j0 + 8);
      for (size_t g = 0; g < NQ; ++g) {
        const __m256 q = _mm256_set1_ps(qs[g][d]);
        s0[g] = _mm256_fmadd_ps(q, k0, s0[g]);
        s1[g] = _mm256_fmadd_ps(q, k1, s1[g]);
      }
    }
    for (size_t g = 0; g < NQ; ++g) {
      float* r = rows[g] + j0;
      _mm256_storeu_ps(r, s0[g]);
      _mm256_storeu_ps(r + 8, s1[g]);
      if (visible[g] >= j0 + 16) {
        mb[g] = _mm256_max_ps(mb[g], _mm256_max_ps(s0[g], s1[g]));
      } else {  // the maximum from the registers, not from r right after the scalar stores (see kernels.cpp)
        const size_t cut = visible[g] > j0 ? visible[g] - j0 : 0;
        for (size_t l = cut; l < 16; ++l) r[l] = -kInf;
        const float* lim = kTailLimit + 16 - cut;  // +inf on the kept lanes, -inf past them
        mb[g] = _mm256_max_ps(mb[g], _mm256_max_ps(_mm256_min_ps(s0[g], _mm256_loadu_ps(lim)),
                                                   _mm256_min_ps(s1[g], _mm256_loadu_ps(lim + 8))));
      }
    }
  }
  // The exp pass with the queries side by side, so their exp chains overlap (as in kernels.cpp).
  __m256 mx[NQ], acc[NQ];
  for (size_t g = 0; g < NQ; ++g) {
    mx[g] = _mm256_set1_ps(simd::hmax8(mb[g]));
    acc[g] = _mm256_setzero_ps();
  }
  for (size_t j0 = 0; j0 < vmax; j0 += 8) {
    for (size_t g = 0; g < NQ; ++g) {
      const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(rows[g] + j0), mx[g]));
      _mm256_storeu_ps(rows[g] + j0, e);
      acc[g] = _mm256_add_ps(acc[g], e);
    }
  }
  float inv[NQ];
  for (size_t g = 0; g < NQ; ++g) inv[g] = 1.0f / simd::hsum8(acc[g]);
  __m256 out[NQ][HV];
  for (size_t g = 0; g < NQ; ++g)
    for (size_t h = 0; h < HV; ++h) out[g][h] = _mm256_setzero_ps();
  for (size_t i = 0; i < vmax; ++i) {
    __m256 vi[HV];
    for (size_t h = 0; h < HV; ++h) vi[h] = _mm256_loadu_ps(v + i * kv_stride + h * 8);
    for (size_t g = 0; g < NQ; ++g) {
      const __m256 p = _mm256_set1_ps(rows[g][i]);
      for (size_t h = 0; h < HV; ++h) out[g][h] = _mm256_fmadd_ps(p, vi[h], out[g][h]);
    }
  }
  for (size_t g = 0; g < NQ; ++g)
    for (size_t h = 0; h < HV; ++h) _mm256_storeu_ps(ot[g] + h * 8, _mm256_mul_ps(out[g][h], _mm256_set1_ps(inv[g])));
}

// Queries g < n (row g at q + g * stride) into lanes: qd[d] lane g = query g's element d, zero for g ≥ n.
template <size_t HD>
PLLM_AVX2 inline void queries_to_lanes(size_t n, const float* q, size_t stride, __m256* qd) {
  for (size_t db = 0; db < HD; db += 8) {
    for (size_t g = 0; g < 8; ++g) qd[db + g] = g < n ? _mm256_loadu_ps(q + g * stride + db) : _mm256_setzero_ps();
    simd::transpose8(qd + db);
  }
}

// Key kj's scores for the 8 query lanes. A function, not a lambda: a lambda does not take its enclosing
// function's target attribute.
template <size_t HD>
PLLM_AVX2 inline __m256 lane_scores(const __m256* qd, const float* kj) {
  __m256 s = _mm256_mul_ps(qd[0], _mm256_broadcast_ss(kj));
  for (size_t d = 1; d < HD; ++d) s = _mm256_fmadd_ps(qd[d], _mm256_broadcast_ss(kj + d), s);
  return s;
}

// Lanes whose query sees key j (visible > j): all ones.
PLLM_AVX2 inline __m256 sees(__m256i vis, size_t j) {
  return _mm256_castsi256_ps(_mm256_cmpgt_epi32(vis, _mm256_set1_epi32(static_cast<int32_t>(j))));
}

// Eight output dimensions [db, db + 8) of the lanes: the exps in `weights` (8 a key) times the values,
// key by key, keys past a lane's last left out of its sums; scaled by inv and stored for the n queries.
PLLM_AVX2 inline void lanes_times_values(size_t n, __m256i vis, size_t common, size_t keys, const float* weights,
                                         const float* v, size_t kv_stride, __m256 inv, float* o, size_t stride) {
  __m256 acc[8];
  for (size_t d = 0; d < 8; ++d) acc[d] = _mm256_setzero_ps();
  size_t j = 0;
  for (; j < common; ++j) {
    const __m256 e = _mm256_load_ps(weights + j * 8);
    const float* vj = v + j * kv_stride;
    for (size_t d = 0; d < 8; ++d) acc[d] = _mm256_fmadd_ps(e, _mm256_broadcast_ss(vj + d), acc[d]);
  }
  for (; j < keys; ++j) {
    const __m256 m = sees(vis, j), e = _mm256_load_ps(weights + j * 8);
    const float* vj = v + j * kv_stride;
    for (size_t d = 0; d < 8; ++d)
      acc[d] = _mm256_blendv_ps(acc[d], _mm256_fmadd_ps(e, _mm256_broadcast_ss(vj + d), acc[d]), m);
  }
  for (size_t d = 0; d < 8; ++d) acc[d] = _mm256_mul_ps(acc[d], inv);
  simd::transpose8(acc);
  for (size_t g = 0; g < n; ++g) _mm256_storeu_ps(o + g * stride, acc[g]);
}

// kernels_avx512.cpp's lanes at eight lanes: pass 1 keeps every score and the lanes' maximum, pass 2 turns
// the scores into exps in place and sums them, pass 3 takes the exps times the values eight output
// dimensions at a time (16 accumulators of a head of 16 would not fit AVX2's 16 registers). Keys every
// query sees (before the fewest any sees) run unmasked; past them a lane's keys beyond its last are masked
// in every pass. A masked lane contributes nothing, so the bytes do not depend on where the split falls.
template <size_t HD>
PLLM_AVX2 void query_lanes(size_t n, const float* q, size_t stride, const size_t* visible, const float* k,
                           const float* v, size_t kv_stride, float scale, float* scratch, float* o) {
  alignas(32) int32_t vis_lanes[8] = {};
  size_t keys = 0, common = visible[0];
  for (size_t g = 0; g < n; ++g) {
    vis_lanes[g] = static_cast<int32_t>(visible[g]);
    keys = std::max(keys, visible[g]);
    common = std::min(common, visible[g]);
  }
  const __m256i vis = _mm256_load_si256(reinterpret_cast<const __m256i*>(vis_lanes));
  __m256 qd[HD];
  queries_to_lanes<HD>(n, q, stride, qd);
  for (size_t d = 0; d < HD; ++d) qd[d] = _mm256_mul_ps(qd[d], _mm256_set1_ps(scale));
  float* scores = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(scratch) + 31) & ~uintptr_t{31});
  const __m256 neg_inf = _mm256_set1_ps(-kInf);
  __m256 mx = neg_inf;
  size_t j = 0;
  for (; j < common; ++j) {
    const __m256 s = lane_scores<HD>(qd, k + j * kv_stride);
    _mm256_store_ps(scores + j * 8, s);
    mx = _mm256_max_ps(mx, s);
  }
  for (; j < keys; ++j) {
    const __m256 s = _mm256_blendv_ps(neg_inf, lane_scores<HD>(qd, k + j * kv_stride), sees(vis, j));
    _mm256_store_ps(scores + j * 8, s);
    mx = _mm256_max_ps(mx, s);
  }
  // A masked score is -inf, its exp exactly 0: the sum takes it unmasked.
  __m256 sum = _mm256_setzero_ps();
  for (j = 0; j < keys; ++j) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_load_ps(scores + j * 8), mx));
    _mm256_store_ps(scores + j * 8, e);
    sum = _mm256_add_ps(sum, e);
  }
  const __m256 inv = _mm256_div_ps(_mm256_set1_ps(1.0f), sum);
  for (size_t db = 0; db < HD; db += 8)
    lanes_times_values(n, vis, common, keys, scores, v + db, kv_stride, inv, o + db, stride);
}

std::atomic<int> g_test_mode{-1}, g_lanes_test_mode{-1};

bool default_preferred() {
  const char* e = std::getenv("POCKETLLM_VEC");
  if (e != nullptr && std::strcmp(e, "build") == 0) return false;
  if (e != nullptr && std::strcmp(e, "avx2") == 0) return supported();
#if defined(__AVX2__)
  return false;  // the build's own Eigen kernels are at least this wide
#else
  return supported();
#endif
}

bool default_lanes_chosen() {
  const char* e = std::getenv("POCKETLLM_ATTENTION");
  if (e != nullptr && std::strcmp(e, "keys") == 0) return false;
  return supported();
}

}  // namespace

bool supported() {
  static const bool ok = cpu_features().avx2 && cpu_features().fma;
  return ok;
}

bool preferred() {
  static const bool chosen = default_preferred();
  const int mode = g_test_mode.load(std::memory_order_relaxed);
  return mode < 0 ? chosen : mode == 1 && supported();
}

void set_preference_for_testing(int mode) { g_test_mode.store(mode, std::memory_order_relaxed); }

bool lanes_chosen() {
  static const bool chosen = default_lanes_chosen();
  const int mode = g_lanes_test_mode.load(std::memory_order_relaxed);
  return mode < 0 ? chosen : mode == 1 && supported();
}

void set_lanes_preference_for_testing(int mode) { g_lanes_test_mode.store(mode, std::memory_order_relaxed); }

PLLM_AVX2 void exp(const float* x, size_t n, float* out) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, exp8(_mm256_loadu_ps(x + i)));
  if (i < n) store_tail(exp8(load_tail(x + i, n - i, 0.0f)), n - i, out + i);
}

PLLM_AVX2 void silu_mul(float* gate, const float* up, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(gate + i, _mm256_mul_ps(silu8(_mm256_loadu_ps(gate + i)), _mm256_loadu_ps(up + i)));
  if (i < n) store_tail(_mm256_mul_ps(silu8(load_tail(gate + i, n - i, 0.0f)), load_tail(up + i, n - i, 0.0f)), n - i, gate + i);
}

namespace {

// R rows side by side, each with the instructions it takes alone (kernels.cpp fold_rows).
template <size_t R>
PLLM_AVX2 void fold_rows(const float* x, size_t n, float* max, float* sum) {
  __m256 mb[R], acc[R];
  float m[R];
  for (size_t r = 0; r < R; ++r) mb[r] = _mm256_set1_ps(max[r]);
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (size_t r = 0; r < R; ++r) mb[r] = _mm256_max_ps(mb[r], _mm256_loadu_ps(x + r * n + i));
  for (size_t r = 0; r < R; ++r) {
    m[r] = simd::hmax8(mb[r]);
    for (size_t j = i; j < n; ++j) m[r] = std::max(m[r], x[r * n + j]);
    acc[r] = _mm256_setzero_ps();
  }
  for (i = 0; i + 8 <= n; i += 8)
    for (size_t r = 0; r < R; ++r)
      acc[r] = _mm256_add_ps(acc[r], exp8(_mm256_sub_ps(_mm256_loadu_ps(x + r * n + i), _mm256_set1_ps(m[r]))));
  if (i < n)  // pad: exp 0
    for (size_t r = 0; r < R; ++r)
      acc[r] = _mm256_add_ps(acc[r], exp8(_mm256_sub_ps(load_tail(x + r * n + i, n - i, -kInf), _mm256_set1_ps(m[r]))));
  for (size_t r = 0; r < R; ++r) {
    sum[r] = sum[r] * std::exp(max[r] - m[r]) + simd::hsum8(acc[r]);
    max[r] = m[r];
  }
}

}  // namespace

PLLM_AVX2 void logsumexp_fold_rows(const float* x, size_t rows, size_t n, float* max, float* sum) {
  if (n == 0) return;
  size_t r = 0;
  for (; r + 4 <= rows; r += 4) fold_rows<4>(x + r * n, n, max + r, sum + r);
  for (; r < rows; ++r) fold_rows<1>(x + r * n, n, max + r, sum + r);
}

void attention_query_group(size_t hd, size_t nq, const float* const* qt, const size_t* visible, const float* kt,
                           size_t padded, const float* v, size_t kv_stride, float scale, float* const* rows,
                           float* const* ot) {
  if (hd == 8) {
    if (nq == 4) query_group<1, 4>(qt, visible, kt, padded, v, kv_stride, scale, rows, ot);
    else query_group<1, 1>(qt, visible, kt, padded, v, kv_stride, scale, rows, ot);
  } else if (hd == 16) {
    if (nq == 4) query_group<2, 4>(qt, visible, kt, padded, v, kv_stride, scale, rows, ot);
    else query_group<2, 1>(qt, visible, kt, padded, v, kv_stride, scale, rows, ot);
  } else {
    std::abort();  // kernels.cpp routes only heads of 8 or 16 lanes here
  }
}

void attention_query_lanes(size_t hd, size_t n, const float* q, size_t stride, const size_t* visible, const float* k,
                           const float* v, size_t kv_stride, float scale, float* scratch, float* o) {
  if (hd == 8) query_lanes<8>(n, q, stride, visible, k, v, kv_stride, scale, scratch, o);
  else if (hd == 16) query_lanes<16>(n, q, stride, visible, k, v, kv_stride, scale, scratch, o);
  else std::abort();  // kernels.cpp routes only heads of 8 or 16 lanes here
}

#else  // not x86-64: never supported, never called

bool supported() { return false; }
bool preferred() { return false; }
void set_preference_for_testing(int) {}
bool lanes_chosen() { return false; }
void set_lanes_preference_for_testing(int) {}
void exp(const float*, size_t, float*) { std::abort(); }
void silu_mul(float*, const float*, size_t) { std::abort(); }
void logsumexp_fold_rows(const float*, size_t, size_t, float*, float*) { std::abort(); }
void attention_query_group(size_t, size_t, const float* const*, const size_t*, const float*, size_t, const float*, size_t,
                           float, float* const*, float* const*) {
  std::abort();
}
void attention_query_lanes(size_t, size_t, const float*, size_t, const size_t*, const float*, const float*, size_t, float,
                           float*, float*) {
  std::abort();
}

#endif

}  // namespace pocketllm::avx2
