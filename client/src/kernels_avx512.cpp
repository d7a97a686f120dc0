#include "kernels_avx512.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "pocketllm/common/cpu_features.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include "kernels_exp.h"
#include "simd_avx2.h"
#define PLLM_AVX512_X86 1
#define PLLM_AVX512 __attribute__((target("avx512f,avx2,fma")))
#endif

namespace pocketllm::avx512 {

namespace {

std::atomic<int> g_test_mode{-1};

bool default_chosen() {
  const char* e = std::getenv("POCKETLLM_ATTENTION");
  if (e != nullptr && (std::strcmp(e, "keys") == 0 || std::strcmp(e, "avx2") == 0)) return false;
  return supported();
}

#if defined(PLLM_AVX512_X86)

PLLM_AVX512 inline __m256 upper_half(__m512 v) { return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)); }

// By masked broadcasts (GCC 12's _mm512_insertf64x4 warns that its own undefined pass-through operand is
// uninitialized).
PLLM_AVX512 inline __m512 join_halves(__m256 lo, __m256 hi) {
  const __m512d low = _mm512_maskz_broadcast_f64x4(0x0F, _mm256_castps_pd(lo));
  return _mm512_castpd_ps(_mm512_mask_broadcast_f64x4(low, 0xF0, _mm256_castps_pd(hi)));
}

// Queries g < n (row g at q + g * stride, HD floats) into lanes: qd[d] lane g = query g's element d, zero
// for g ≥ n. By 8 × 8 register transposes: a scalar copy through a buffer was a fifth of the kernel's time
// on stories260K (the buffer's 2 · 16 · HD scalar moves each way), gathers more.
template <size_t HD>
PLLM_AVX512 inline void queries_to_lanes(size_t n, const float* q, size_t stride, __m512* qd) {
  for (size_t db = 0; db < HD; db += 8) {
    __m256 half[2][8];
    for (size_t h = 0; h < 2; ++h) {
      for (size_t j = 0; j < 8; ++j) {
        const size_t g = h * 8 + j;
        half[h][j] = g < n ? _mm256_loadu_ps(q + g * stride + db) : _mm256_setzero_ps();
      }
      simd::transpose8(half[h]);
    }
    for (size_t d = 0; d < 8; ++d) qd[db + d] = join_halves(half[0][d], half[1][d]);
  }
}

// The inverse for the outputs: lane g of acc[d] to o[g * stride + d] for g < n.
template <size_t HD>
PLLM_AVX512 inline void lanes_to_outputs(size_t n, const __m512* acc, float* o, size_t stride) {
  for (size_t db = 0; db < HD; db += 8) {
    __m256 half[2][8];
    for (size_t d = 0; d < 8; ++d) {
      half[0][d] = _mm512_castps512_ps256(acc[db + d]);
      half[1][d] = upper_half(acc[db + d]);
    }
    for (size_t h = 0; h < 2; ++h) {
      simd::transpose8(half[h]);
      for (size_t j = 0; j < 8; ++j)
        if (h * 8 + j < n) _mm256_storeu_ps(o + (h * 8 + j) * stride + db, half[h][j]);
    }
  }
}

// Key kj's scores for the 16 query lanes (qd[d]: lane g holds query g's lane d). A function, not a lambda:
// a lambda does not take its enclosing function's target attribute.
template <size_t HD>
PLLM_AVX512 inline __m512 lane_scores(const __m512* qd, const float* kj) {
  __m512 s = _mm512_mul_ps(qd[0], _mm512_set1_ps(kj[0]));
  for (size_t d = 1; d < HD; ++d) s = _mm512_fmadd_ps(qd[d], _mm512_set1_ps(kj[d]), s);
  return s;
}

// Pass 1 keeps every score (16 lanes a key) and the lanes' maximum; pass 2 takes the exps against that
// maximum and accumulates their sum and the values. Keys every query sees (before the fewest any of the n
// queries sees) run unmasked; past them a lane's keys beyond its last are masked in both passes. Lanes past
// n hold zero queries and are never stored. A masked lane contributes nothing, as before the split, so the
// bytes do not depend on where the split falls.
template <size_t HD>
PLLM_AVX512 void lanes(size_t n, const float* q, size_t stride, const size_t* visible, const float* k, const float* v,
                       size_t kv_stride, float scale, float* scratch, float* o) {
  alignas(64) int32_t vis_lanes[16] = {};
  size_t keys = 0, common = visible[0];
  for (size_t g = 0; g < n; ++g) {
    vis_lanes[g] = static_cast<int32_t>(visible[g]);
    keys = std::max(keys, visible[g]);
    common = std::min(common, visible[g]);
  }
  const __m512i vis = _mm512_load_si512(vis_lanes);
  __m512 qd[HD];
  queries_to_lanes<HD>(n, q, stride, qd);
  for (size_t d = 0; d < HD; ++d) qd[d] = _mm512_mul_ps(qd[d], _mm512_set1_ps(scale));
  float* scores = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(scratch) + 63) & ~uintptr_t{63});
  const __m512 neg_inf = _mm512_set1_ps(-INFINITY);
  __m512 mx = neg_inf;
  size_t j = 0;
  for (; j < common; ++j) {
    const __m512 s = lane_scores<HD>(qd, k + j * kv_stride);
    _mm512_store_ps(scores + j * 16, s);
    mx = _mm512_max_ps(mx, s);
  }
  for (; j < keys; ++j) {
    const __mmask16 m = _mm512_cmpgt_epi32_mask(vis, _mm512_set1_epi32(static_cast<int32_t>(j)));
    const __m512 s = _mm512_mask_blend_ps(m, neg_inf, lane_scores<HD>(qd, k + j * kv_stride));
    _mm512_store_ps(scores + j * 16, s);
    mx = _mm512_max_ps(mx, s);
  }
  __m512 acc[HD], sum = _mm512_setzero_ps();
  for (size_t d = 0; d < HD; ++d) acc[d] = _mm512_setzero_ps();
  for (j = 0; j < common; ++j) {
    const __m512 e = vexp::exp_ps(_mm512_sub_ps(_mm512_load_ps(scores + j * 16), mx));
    sum = _mm512_add_ps(sum, e);
    const float* vj = v + j * kv_stride;
    for (size_t d = 0; d < HD; ++d) acc[d] = _mm512_fmadd_ps(e, _mm512_set1_ps(vj[d]), acc[d]);
  }
  for (; j < keys; ++j) {
    const __mmask16 m = _mm512_cmpgt_epi32_mask(vis, _mm512_set1_epi32(static_cast<int32_t>(j)));
    const __m512 e = vexp::exp_ps(_mm512_sub_ps(_mm512_load_ps(scores + j * 16), mx));
    sum = _mm512_mask_add_ps(sum, m, sum, e);
    const float* vj = v + j * kv_stride;
    for (size_t d = 0; d < HD; ++d) acc[d] = _mm512_mask3_fmadd_ps(e, _mm512_set1_ps(vj[d]), acc[d], m);
  }
  const __m512 inv = _mm512_div_ps(_mm512_set1_ps(1.0f), sum);
  for (size_t d = 0; d < HD; ++d) acc[d] = _mm512_mul_ps(acc[d], inv);
  lanes_to_outputs<HD>(n, acc, o, stride);
}

PLLM_AVX512 void exp_lanes(const float* x, size_t n, float* out) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, vexp::exp_ps(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 tail = static_cast<__mmask16>((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(out + i, tail, vexp::exp_ps(_mm512_maskz_loadu_ps(tail, x + i)));
  }
}

#endif

}  // namespace

bool supported() {
#if defined(PLLM_AVX512_X86)
  static const bool ok = cpu_features().avx512f && cpu_features().avx2 && cpu_features().fma;
  return ok;
#else
  return false;
#endif
}

bool chosen() {
  static const bool by_default = default_chosen();
  const int mode = g_test_mode.load(std::memory_order_relaxed);
  return mode < 0 ? by_default : mode == 1 && supported();
}

void set_preference_for_testing(int mode) { g_test_mode.store(mode, std::memory_order_relaxed); }

void exp(const float* x, size_t n, float* out) {
#if defined(PLLM_AVX512_X86)
  exp_lanes(x, n, out);
#else
  (void)x, (void)n, (void)out;
  std::abort();  // never called where supported() is false
#endif
}

void attention_query_lanes(size_t hd, size_t n, const float* q, size_t stride, const size_t* visible, const float* k,
                           const float* v, size_t kv_stride, float scale, float* scratch, float* o) {
#if defined(PLLM_AVX512_X86)
  if (hd == 8) return lanes<8>(n, q, stride, visible, k, v, kv_stride, scale, scratch, o);
  if (hd == 16) return lanes<16>(n, q, stride, visible, k, v, kv_stride, scale, scratch, o);
#endif
  (void)n, (void)q, (void)stride, (void)visible, (void)k, (void)v, (void)kv_stride, (void)scale, (void)scratch, (void)o;
  std::abort();  // kernels.cpp routes only heads of 8 or 16 lanes here, and only when supported()
}

}  // namespace pocketllm::avx512
