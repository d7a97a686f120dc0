#include "kernels_kquant.h"

#include <algorithm>
#include <cmath>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include <cstring>

#include "simd_avx2.h"
#define PLLM_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace pocketllm::kquant {
namespace {

PLLM_AVX2 inline float half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

// Bytes 0..7 / 8..15 of v as 8 floats (unsigned or signed bytes).
PLLM_AVX2 inline __m256 u8_lo(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v)); }
PLLM_AVX2 inline __m256 u8_hi(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(v, 8))); }
PLLM_AVX2 inline __m256 s8_lo(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)); }
PLLM_AVX2 inline __m256 s8_hi(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(v, 8))); }

// Σ q_l x_l and Σ x_l over 32 elements whose quants are the 32 unsigned bytes of q.
PLLM_AVX2 inline void dot32_u8(__m256i q, const float* x, __m256* qx, __m256* xs) {
  const __m128i a = _mm256_castsi256_si128(q), b = _mm256_extracti128_si256(q, 1);
  const __m256 x0 = _mm256_loadu_ps(x), x1 = _mm256_loadu_ps(x + 8), x2 = _mm256_loadu_ps(x + 16), x3 = _mm256_loadu_ps(x + 24);
  __m256 s = _mm256_mul_ps(u8_lo(a), x0);
  s = _mm256_fmadd_ps(u8_hi(a), x1, s);
  s = _mm256_fmadd_ps(u8_lo(b), x2, s);
  *qx = _mm256_fmadd_ps(u8_hi(b), x3, s);
  *xs = _mm256_add_ps(_mm256_add_ps(x0, x1), _mm256_add_ps(x2, x3));
}

// Q4_K's and Q5_K's sub-block s scale and min (docs/gguf.md §4).
inline void scale_min(int s, const uint8_t* q, float* sc, float* m) {
  if (s < 4) {
    *sc = static_cast<float>(q[s] & 63);
    *m = static_cast<float>(q[s + 4] & 63);
  } else {
    *sc = static_cast<float>((q[s + 4] & 0x0F) | ((q[s - 4] >> 6) << 4));
    *m = static_cast<float>((q[s + 4] >> 4) | ((q[s] >> 6) << 4));
  }
}

// Q4_K's / Q5_K's 64 quants of sub-blocks 2g (lo) and 2g+1 (hi) as bytes in element order: the nibbles of
// qs[0..31], and for Q5_K bit 2g / 2g+1 of qh[l] as 16.
template <bool kHigh>
PLLM_AVX2 inline void k45_quants(const uint8_t* qs, __m256i qh, int g, __m256i* lo, __m256i* hi) {
  const __m256i nib = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
  const __m256i packed = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs));
  *lo = _mm256_and_si256(packed, nib);
  *hi = _mm256_and_si256(_mm256_srli_epi16(packed, 4), nib);
  if constexpr (kHigh) {
    *lo = _mm256_or_si256(*lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * g), one), 4));
    *hi = _mm256_or_si256(*hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * g + 1), one), 4));
  }
}

// Q4_K (kHigh false) and Q5_K (true): per 64 elements, qs's 32 bytes hold sub-block 2g in the low and 2g+1
// in the high nibbles; Q5_K adds bit s of qh[l] as 16. Σ (d·sc·q − dmin·m)·x = d·Σ sc·(q·x) − dmin·Σ m·Σx.
template <bool kHigh>
PLLM_AVX2 float dot_k45(const uint8_t* row, const float* x, size_t blocks) {
  constexpr size_t kBytes = kHigh ? 176 : 144;
  __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
  for (size_t b = 0; b < blocks; ++b, row += kBytes) {
    const float d = half(row), dmin = half(row + 2);
    const uint8_t* scales = row + 4;
    const uint8_t* qs = row + (kHigh ? 48 : 16);
    const __m256i qh = kHigh ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 16)) : _mm256_setzero_si256();
    for (int g = 0; g < 4; ++g, qs += 32, x += 64) {
      __m256i lo, hi;
      k45_quants<kHigh>(qs, qh, g, &lo, &hi);
      float sc1, m1, sc2, m2;
      scale_min(2 * g, scales, &sc1, &m1);
      scale_min(2 * g + 1, scales, &sc2, &m2);
      __m256 qx, xs;
      dot32_u8(lo, x, &qx, &xs);
      acc = _mm256_fmadd_ps(_mm256_set1_ps(d * sc1), qx, acc);
      accm = _mm256_fmadd_ps(_mm256_set1_ps(dmin * m1), xs, accm);
      dot32_u8(hi, x + 32, &qx, &xs);
      acc = _mm256_fmadd_ps(_mm256_set1_ps(d * sc2), qx, acc);
      accm = _mm256_fmadd_ps(_mm256_set1_ps(dmin * m2), xs, accm);
    }
  }
  return simd::hsum8(acc) - simd::hsum8(accm);
}

// Q6_K: per half of 128, quarter k takes the low nibbles (k < 2) or high nibbles of ql[32(k mod 2) ..],
// bits 2k of qh, minus 32; the 16-element sub-blocks have int8 scales.
PLLM_AVX2 float dot_q6_k(const uint8_t* row, const float* x, size_t blocks) {
  const __m256i nib = _mm256_set1_epi8(0x0F), three = _mm256_set1_epi8(3), k32 = _mm256_set1_epi8(32);
  __m256 acc = _mm256_setzero_ps();
  for (size_t b = 0; b < blocks; ++b, row += 210) {
    const float d = half(row + 208);
    const auto* sc = reinterpret_cast<const int8_t*>(row + 192);
    for (int n = 0; n < 2; ++n, x += 128) {
      const uint8_t* ql = row + 64 * n;
      const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
      const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 128 + 32 * n));
      for (int k = 0; k < 4; ++k) {
        const __m256i low = k == 0 ? _mm256_and_si256(l0, nib)
                            : k == 1 ? _mm256_and_si256(l1, nib)
                            : k == 2 ? _mm256_and_si256(_mm256_srli_epi16(l0, 4), nib)
                                     : _mm256_and_si256(_mm256_srli_epi16(l1, 4), nib);
        const __m256i high = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), three), 4);
        const __m256i q = _mm256_sub_epi8(_mm256_or_si256(low, high), k32);  // -32 .. 31
        const __m128i a = _mm256_castsi256_si128(q), c = _mm256_extracti128_si256(q, 1);
        const float* xk = x + 32 * k;
        __m256 s1 = _mm256_mul_ps(s8_lo(a), _mm256_loadu_ps(xk));
        s1 = _mm256_fmadd_ps(s8_hi(a), _mm256_loadu_ps(xk + 8), s1);
        __m256 s2 = _mm256_mul_ps(s8_lo(c), _mm256_loadu_ps(xk + 16));
        s2 = _mm256_fmadd_ps(s8_hi(c), _mm256_loadu_ps(xk + 24), s2);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d * static_cast<float>(sc[8 * n + 2 * k])), s1, acc);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d * static_cast<float>(sc[8 * n + 2 * k + 1])), s2, acc);
      }
    }
  }
  return simd::hsum8(acc);
}

// Σ over 16 signed-byte quants (bytes 0..15 of v) times x.
PLLM_AVX2 inline __m256 dot16_s8(__m128i v, const float* x) {
  return _mm256_fmadd_ps(s8_hi(v), _mm256_loadu_ps(x + 8), _mm256_mul_ps(s8_lo(v), _mm256_loadu_ps(x)));
}

// Q3_K's 6-bit scale s (docs/gguf.md §4).
inline int scale_k3(const uint8_t* sc, int s) {
  const int low = s < 8 ? sc[s] & 0x0F : sc[s - 8] >> 4;
  return low | (((sc[8 + s % 4] >> (2 * (s / 4))) & 3) << 4);
}

// Q2_K (kThree false) and Q3_K (true): per half n, quarter j holds bits 2j of qs[32n + l] for l < 32 (two
// sub-blocks of 16). Q2_K: (d·sc)·q − (dmin·m); Q3_K: q − 4 unless bit 4n + j of hmask[l], scale − 32.
template <bool kThree>
PLLM_AVX2 float dot_k23(const uint8_t* row, const float* x, size_t blocks) {
  constexpr size_t kBytes = kThree ? 110 : 84;
  const __m256i three = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1), four = _mm256_set1_epi8(4);
  __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
  for (size_t b = 0; b < blocks; ++b, row += kBytes) {
    const uint8_t* qs = row + (kThree ? 32 : 16);
    const float d = half(row + (kThree ? 108 : 80));
    const float dmin = kThree ? 0.0f : half(row + 82);
    const __m256i hmask = kThree ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row)) : _mm256_setzero_si256();
    int s = 0;
    for (int n = 0; n < 2; ++n) {
      const __m256i packed = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * n));
      for (int j = 0; j < 4; ++j, x += 32, s += 2) {
        __m256i q = _mm256_and_si256(_mm256_srli_epi16(packed, 2 * j), three);
        if constexpr (kThree) {
          const __m256i hb = _mm256_and_si256(_mm256_srli_epi16(hmask, 4 * n + j), one);
          q = _mm256_sub_epi8(_mm256_or_si256(q, _mm256_slli_epi16(hb, 2)), four);  // −4 .. 3
        }
        const __m128i a = _mm256_castsi256_si128(q), c = _mm256_extracti128_si256(q, 1);
        const __m256 qx1 = dot16_s8(a, x), qx2 = dot16_s8(c, x + 16);
        if constexpr (kThree) {
          acc = _mm256_fmadd_ps(_mm256_set1_ps(d * static_cast<float>(scale_k3(row + 96, s) - 32)), qx1, acc);
          acc = _mm256_fmadd_ps(_mm256_set1_ps(d * static_cast<float>(scale_k3(row + 96, s + 1) - 32)), qx2, acc);
        } else {
          const uint8_t sc1 = row[s], sc2 = row[s + 1];
          acc = _mm256_fmadd_ps(_mm256_set1_ps(d * static_cast<float>(sc1 & 0x0F)), qx1, acc);
          acc = _mm256_fmadd_ps(_mm256_set1_ps(d * static_cast<float>(sc2 & 0x0F)), qx2, acc);
          const __m256 xs1 = _mm256_add_ps(_mm256_loadu_ps(x), _mm256_loadu_ps(x + 8));
          const __m256 xs2 = _mm256_add_ps(_mm256_loadu_ps(x + 16), _mm256_loadu_ps(x + 24));
          accm = _mm256_fmadd_ps(_mm256_set1_ps(dmin * static_cast<float>(sc1 >> 4)), xs1, accm);
          accm = _mm256_fmadd_ps(_mm256_set1_ps(dmin * static_cast<float>(sc2 >> 4)), xs2, accm);
        }
      }
    }
  }
  return simd::hsum8(acc) - simd::hsum8(accm);
}

// The 32 bits of Q5_0/Q5_1's qh as 32 bytes of 0x10 (bit set) or 0.
PLLM_AVX2 inline __m256i fifth_bits(const uint8_t* qh) {
  uint32_t h;
  std::memcpy(&h, qh, 4);
  const __m256i shuffle = _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303);
  const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(h)), shuffle);
  const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ull));
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit), _mm256_set1_epi8(0x10));
}

// Q4_1, Q5_0, Q5_1: 32-element blocks; element j < 16 in the low nibble of qs[j], j + 16 in the high one.
// The 32 quants as bytes in element order, then d·Σq·x (+ m·Σx).
template <int kType>  // 0: Q4_1, 1: Q5_0, 2: Q5_1
PLLM_AVX2 float dot_legacy(const uint8_t* row, const float* x, size_t blocks) {
  constexpr size_t kBytes = kType == 0 ? 20 : kType == 1 ? 22 : 24;
  const __m128i nib = _mm_set1_epi8(0x0F);
  __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
  for (size_t b = 0; b < blocks; ++b, row += kBytes, x += 32) {
    const float d = half(row);
    const uint8_t* qs = row + (kType == 0 ? 4 : kType == 1 ? 6 : 8);
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    __m256i q = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(packed, 4), nib), _mm_and_si128(packed, nib));
    if constexpr (kType != 0) q = _mm256_or_si256(q, fifth_bits(row + (kType == 1 ? 2 : 4)));
    __m256 qx, xs;
    dot32_u8(q, x, &qx, &xs);
    if constexpr (kType == 1) {  // (q − 16)·d = d·q − 16d
      acc = _mm256_fmadd_ps(_mm256_set1_ps(d), qx, acc);
      accm = _mm256_fmadd_ps(_mm256_set1_ps(16.0f * d), xs, accm);
    } else {  // q·d + m
      acc = _mm256_fmadd_ps(_mm256_set1_ps(d), qx, acc);
      accm = _mm256_fnmadd_ps(_mm256_set1_ps(half(row + 2)), xs, accm);
    }
  }
  return simd::hsum8(acc) - simd::hsum8(accm);
}

// ---- int8 activations (decode of Q4_K, Q5_K, Q6_K) ----
// u8 quants (32 bytes) times s8 activations (32 bytes): 8 int32 lane sums as floats.
PLLM_AVX2 inline __m256 udot32(__m256i u, const int8_t* xq) {
  const __m256i p = _mm256_maddubs_epi16(u, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq)));
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}

// Q4_K / Q5_K: Σ_sub-blocks d·sc·dx·Σ(q·xq) − dmin·m·Σx, Σx the float sum of the sub-block's activations.
template <bool kHigh>
PLLM_AVX2 float dot_k45_int8(const uint8_t* row, const int8_t* xq, const float* dx, const float* xsum, size_t blocks) {
  constexpr size_t kBytes = kHigh ? 176 : 144;
  __m256 acc = _mm256_setzero_ps();
  float mins = 0.0f;
  for (size_t b = 0; b < blocks; ++b, row += kBytes) {
    const float d = half(row), dmin = half(row + 2);
    const uint8_t* scales = row + 4;
    const uint8_t* qs = row + (kHigh ? 48 : 16);
    const __m256i qh = kHigh ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 16)) : _mm256_setzero_si256();
    for (int g = 0; g < 4; ++g, qs += 32, xq += 64, dx += 2, xsum += 2) {
      __m256i lo, hi;
      k45_quants<kHigh>(qs, qh, g, &lo, &hi);
      float sc1, m1, sc2, m2;
      scale_min(2 * g, scales, &sc1, &m1);
      scale_min(2 * g + 1, scales, &sc2, &m2);
      acc = _mm256_fmadd_ps(_mm256_set1_ps(d * sc1 * dx[0]), udot32(lo, xq), acc);
      acc = _mm256_fmadd_ps(_mm256_set1_ps(d * sc2 * dx[1]), udot32(hi, xq + 32), acc);
      mins += dmin * (m1 * xsum[0] + m2 * xsum[1]);
    }
  }
  return simd::hsum8(acc) - mins;
}

// Q6_K: the quants as u = q + 32 (0..63), Σ u·xq − 32·Σ xq per 16-element sub-block; lanes 0-3 of the
// madd are the quarter's first 16 elements, lanes 4-7 the next 16.
PLLM_AVX2 float dot_q6_k_int8(const uint8_t* row, const int8_t* xq, const float* dx, size_t blocks) {
  const __m256i nib = _mm256_set1_epi8(0x0F), three = _mm256_set1_epi8(3), k32 = _mm256_set1_epi8(32), ones = _mm256_set1_epi16(1);
  __m256 acc = _mm256_setzero_ps();
  for (size_t b = 0; b < blocks; ++b, row += 210) {
    const float d = half(row + 208);
    const auto* sc = reinterpret_cast<const int8_t*>(row + 192);
    for (int n = 0; n < 2; ++n) {
      const uint8_t* ql = row + 64 * n;
      const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
      const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 128 + 32 * n));
      for (int k = 0; k < 4; ++k, xq += 32, ++dx) {
        const __m256i low = k == 0 ? _mm256_and_si256(l0, nib)
                            : k == 1 ? _mm256_and_si256(l1, nib)
                            : k == 2 ? _mm256_and_si256(_mm256_srli_epi16(l0, 4), nib)
                                     : _mm256_and_si256(_mm256_srli_epi16(l1, 4), nib);
        const __m256i u = _mm256_or_si256(low, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), three), 4));
        const __m256i x8 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq));
        const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(u, x8), _mm256_maddubs_epi16(k32, x8));
        const __m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones));
        const float s1 = d * static_cast<float>(sc[8 * n + 2 * k]) * dx[0], s2 = d * static_cast<float>(sc[8 * n + 2 * k + 1]) * dx[0];
        acc = _mm256_fmadd_ps(_mm256_setr_ps(s1, s1, s1, s1, s2, s2, s2, s2), f, acc);
      }
    }
  }
  return simd::hsum8(acc);
}

}  // namespace

bool has_x86_int8_kernel(DType t) { return t == DType::kQ4_K || t == DType::kQ5_K || t == DType::kQ6_K; }

float dot_x86_int8(DType t, const uint8_t* row, const int8_t* xq, const float* dx, const float* xsum, size_t blocks) {
  switch (t) {
    case DType::kQ4_K: return dot_k45_int8<false>(row, xq, dx, xsum, blocks);
    case DType::kQ5_K: return dot_k45_int8<true>(row, xq, dx, xsum, blocks);
    case DType::kQ6_K: return dot_q6_k_int8(row, xq, dx, blocks);
    default: return 0.0f;
  }
}

bool has_x86_kernel(DType t) {
  switch (t) {
    case DType::kQ2_K: case DType::kQ3_K: case DType::kQ4_K: case DType::kQ5_K: case DType::kQ6_K:
    case DType::kQ4_1: case DType::kQ5_0: case DType::kQ5_1: return true;
    default: return false;
  }
}

float dot_x86(DType t, const uint8_t* row, const float* x, size_t blocks) {
  switch (t) {
    case DType::kQ2_K: return dot_k23<false>(row, x, blocks);
    case DType::kQ3_K: return dot_k23<true>(row, x, blocks);
    case DType::kQ4_K: return dot_k45<false>(row, x, blocks);
    case DType::kQ5_K: return dot_k45<true>(row, x, blocks);
    case DType::kQ6_K: return dot_q6_k(row, x, blocks);
    case DType::kQ4_1: return dot_legacy<0>(row, x, blocks);
    case DType::kQ5_0: return dot_legacy<1>(row, x, blocks);
    case DType::kQ5_1: return dot_legacy<2>(row, x, blocks);
    default: return 0.0f;
  }
}

}  // namespace pocketllm::kquant

#else  // not x86-64: no direct kernels here

namespace pocketllm::kquant {
bool has_x86_kernel(DType) { return false; }
float dot_x86(DType, const uint8_t*, const float*, size_t) { return 0.0f; }
bool has_x86_int8_kernel(DType) { return false; }
float dot_x86_int8(DType, const uint8_t*, const int8_t*, const float*, const float*, size_t) { return 0.0f; }
}  // namespace pocketllm::kquant

#endif

namespace pocketllm::kquant {

void quantize_activations(const float* x, size_t k, int8_t* q, float* d, float* xsum) {
  for (size_t b = 0; b < k / 32; ++b, x += 32, q += 32) {
    float amax = 0.0f;
    bool finite = true;
    for (int j = 0; j < 32; ++j) {
      finite = finite && std::isfinite(x[j]);
      amax = std::max(amax, std::fabs(x[j]));
    }
    if (!finite) {  // the product must come out non-finite, as the float kernels' would
      std::fill_n(q, 32, 0);
      d[b] = NAN;
      if (xsum) xsum[b] = NAN;
      continue;
    }
    d[b] = amax / 127.0f;
    const float id = d[b] != 0.0f ? 1.0f / d[b] : 0.0f;
    int sum = 0;
    for (int j = 0; j < 32; ++j) {
      q[j] = static_cast<int8_t>(std::nearbyint(x[j] * id));
      sum += q[j];
    }
    if (xsum) xsum[b] = d[b] * static_cast<float>(sum);  // the quantized activations' sum, as the products use them
  }
}

}  // namespace pocketllm::kquant
