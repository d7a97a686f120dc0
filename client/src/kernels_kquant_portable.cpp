// The direct K-quant dot products off x86's AVX2 path, for Q4_K, Q5_K and Q6_K (the Q4_K_M / Q5_K_M /
// Q6_K files): NEON intrinsics on arm64 (baseline Armv8.0: every arm64 core), elsewhere portable C++ with
// eight independent float lanes. Same element order and sub-block algebra as the AVX2 kernels
// (kernels_kquant.cpp); tested against dequantize-then-multiply on x86 (the portable code) and under
// qemu-aarch64 (NEON) by the test command.
#include <cstring>

#if defined(__aarch64__)
#include <arm_neon.h>
#endif

#include "kernels_kquant.h"
#include "pocketllm/common/dtype.h"

namespace pocketllm::kquant {
namespace {

inline float half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

inline void scale_min(int s, const uint8_t* q, float* sc, float* m) {
  if (s < 4) {
    *sc = static_cast<float>(q[s] & 63);
    *m = static_cast<float>(q[s + 4] & 63);
  } else {
    *sc = static_cast<float>((q[s + 4] & 0x0F) | ((q[s - 4] >> 6) << 4));
    *m = static_cast<float>((q[s + 4] >> 4) | ((q[s] >> 6) << 4));
  }
}

// Q4_K (kHigh false) and Q5_K (true).
template <bool kHigh>
float dot_k45(const uint8_t* row, const float* x, size_t blocks) {
  constexpr size_t kBytes = kHigh ? 176 : 144;
  float acc[8] = {}, accm[8] = {};
  for (size_t b = 0; b < blocks; ++b, row += kBytes) {
    const float d = half(row), dmin = half(row + 2);
    const uint8_t* scales = row + 4;
    const uint8_t* qh = row + 16;
    const uint8_t* qs = row + (kHigh ? 48 : 16);
    for (int g = 0; g < 4; ++g, qs += 32, x += 64) {
      float sc1, m1, sc2, m2;
      scale_min(2 * g, scales, &sc1, &m1);
      scale_min(2 * g + 1, scales, &sc2, &m2);
      float lo[32], hi[32];  // the two sub-blocks' quants as floats, in element order
      for (int l = 0; l < 32; ++l) {
        int a = qs[l] & 0x0F, c = qs[l] >> 4;
        if constexpr (kHigh) {
          a |= ((qh[l] >> (2 * g)) & 1) << 4;
          c |= ((qh[l] >> (2 * g + 1)) & 1) << 4;
        }
        lo[l] = static_cast<float>(a);
        hi[l] = static_cast<float>(c);
      }
      float q1[8] = {}, x1[8] = {}, q2[8] = {}, x2[8] = {};
      for (int j = 0; j < 32; j += 8)
        for (int l = 0; l < 8; ++l) {
          q1[l] += lo[j + l] * x[j + l];
          x1[l] += x[j + l];
          q2[l] += hi[j + l] * x[32 + j + l];
          x2[l] += x[32 + j + l];
        }
      const float a1 = d * sc1, a2 = d * sc2, b1 = dmin * m1, b2 = dmin * m2;
      for (int l = 0; l < 8; ++l) {
        acc[l] += a1 * q1[l] + a2 * q2[l];
        accm[l] += b1 * x1[l] + b2 * x2[l];
      }
    }
  }
  float t = 0;
  for (int l = 0; l < 8; ++l) t += acc[l] - accm[l];
  return t;
}

float dot_q6_k(const uint8_t* row, const float* x, size_t blocks) {
  float acc[8] = {};
  for (size_t b = 0; b < blocks; ++b, row += 210) {
    const float d = half(row + 208);
    const auto* sc = reinterpret_cast<const int8_t*>(row + 192);
    for (int n = 0; n < 2; ++n, x += 128) {
      const uint8_t* ql = row + 64 * n;
      const uint8_t* qh = row + 128 + 32 * n;
      for (int k = 0; k < 4; ++k) {
        const uint8_t* lq = ql + 32 * (k % 2);
        const int shift = k < 2 ? 0 : 4;
        float q[32];  // the quarter's quants as floats, in element order
        for (int l = 0; l < 32; ++l) q[l] = static_cast<float>((((lq[l] >> shift) & 0x0F) | (((qh[l] >> (2 * k)) & 3) << 4)) - 32);
        float s1[8] = {}, s2[8] = {};
        for (int j = 0; j < 16; j += 8)
          for (int l = 0; l < 8; ++l) {
            s1[l] += q[j + l] * x[32 * k + j + l];
            s2[l] += q[16 + j + l] * x[32 * k + 16 + j + l];
          }
        const float a1 = d * static_cast<float>(sc[8 * n + 2 * k]), a2 = d * static_cast<float>(sc[8 * n + 2 * k + 1]);
        for (int l = 0; l < 8; ++l) acc[l] += a1 * s1[l] + a2 * s2[l];
      }
    }
  }
  float t = 0;
  for (float a : acc) t += a;
  return t;
}

#if defined(__aarch64__)
// 16 bytes (unsigned or signed) times 16 floats of x, into four-lane accumulators; xs gets Σ x.
inline void dot16_u8(uint8x16_t v, const float* x, float32x4_t* qx, float32x4_t* xs) {
  const uint16x8_t lo = vmovl_u8(vget_low_u8(v)), hi = vmovl_u8(vget_high_u8(v));
  const float32x4_t x0 = vld1q_f32(x), x1 = vld1q_f32(x + 4), x2 = vld1q_f32(x + 8), x3 = vld1q_f32(x + 12);
  *qx = vfmaq_f32(*qx, vcvtq_f32_u32(vmovl_u16(vget_low_u16(lo))), x0);
  *qx = vfmaq_f32(*qx, vcvtq_f32_u32(vmovl_u16(vget_high_u16(lo))), x1);
  *qx = vfmaq_f32(*qx, vcvtq_f32_u32(vmovl_u16(vget_low_u16(hi))), x2);
  *qx = vfmaq_f32(*qx, vcvtq_f32_u32(vmovl_u16(vget_high_u16(hi))), x3);
  *xs = vaddq_f32(*xs, vaddq_f32(vaddq_f32(x0, x1), vaddq_f32(x2, x3)));
}

inline float32x4_t dot16_s8(int8x16_t v, const float* x) {
  const int16x8_t lo = vmovl_s8(vget_low_s8(v)), hi = vmovl_s8(vget_high_s8(v));
  float32x4_t s = vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))), vld1q_f32(x));
  s = vfmaq_f32(s, vcvtq_f32_s32(vmovl_s16(vget_high_s16(lo))), vld1q_f32(x + 4));
  s = vfmaq_f32(s, vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))), vld1q_f32(x + 8));
  return vfmaq_f32(s, vcvtq_f32_s32(vmovl_s16(vget_high_s16(hi))), vld1q_f32(x + 12));
}

template <bool kHigh>
float dot_k45_neon(const uint8_t* row, const float* x, size_t blocks) {
  constexpr size_t kBytes = kHigh ? 176 : 144;
  const uint8x16_t nib = vdupq_n_u8(0x0F), one = vdupq_n_u8(1);
  float32x4_t acc = vdupq_n_f32(0.0f), accm = vdupq_n_f32(0.0f);
  for (size_t b = 0; b < blocks; ++b, row += kBytes) {
    const float d = half(row), dmin = half(row + 2);
    const uint8_t* scales = row + 4;
    const uint8_t* qs = row + (kHigh ? 48 : 16);
    uint8x16_t h0 = vdupq_n_u8(0), h1 = vdupq_n_u8(0);
    if constexpr (kHigh) h0 = vld1q_u8(row + 16), h1 = vld1q_u8(row + 32);
    for (int g = 0; g < 4; ++g, qs += 32, x += 64) {
      const uint8x16_t a = vld1q_u8(qs), c = vld1q_u8(qs + 16);
      uint8x16_t lo0 = vandq_u8(a, nib), lo1 = vandq_u8(c, nib), hi0 = vshrq_n_u8(a, 4), hi1 = vshrq_n_u8(c, 4);
      if constexpr (kHigh) {  // bit s of qh[l] as 16
        const int8x16_t s_lo = vdupq_n_s8(static_cast<int8_t>(-2 * g)), s_hi = vdupq_n_s8(static_cast<int8_t>(-2 * g - 1));
        lo0 = vorrq_u8(lo0, vshlq_n_u8(vandq_u8(vshlq_u8(h0, s_lo), one), 4));
        lo1 = vorrq_u8(lo1, vshlq_n_u8(vandq_u8(vshlq_u8(h1, s_lo), one), 4));
        hi0 = vorrq_u8(hi0, vshlq_n_u8(vandq_u8(vshlq_u8(h0, s_hi), one), 4));
        hi1 = vorrq_u8(hi1, vshlq_n_u8(vandq_u8(vshlq_u8(h1, s_hi), one), 4));
      }
      float sc1, m1, sc2, m2;
      scale_min(2 * g, scales, &sc1, &m1);
      scale_min(2 * g + 1, scales, &sc2, &m2);
      float32x4_t q1 = vdupq_n_f32(0.0f), x1 = vdupq_n_f32(0.0f), q2 = vdupq_n_f32(0.0f), x2 = vdupq_n_f32(0.0f);
      dot16_u8(lo0, x, &q1, &x1);
      dot16_u8(lo1, x + 16, &q1, &x1);
      dot16_u8(hi0, x + 32, &q2, &x2);
      dot16_u8(hi1, x + 48, &q2, &x2);
      acc = vfmaq_n_f32(acc, q1, d * sc1);
      acc = vfmaq_n_f32(acc, q2, d * sc2);
      accm = vfmaq_n_f32(accm, x1, dmin * m1);
      accm = vfmaq_n_f32(accm, x2, dmin * m2);
    }
  }
  return vaddvq_f32(acc) - vaddvq_f32(accm);
}

float dot_q6_k_neon(const uint8_t* row, const float* x, size_t blocks) {
  const uint8x16_t nib = vdupq_n_u8(0x0F), three = vdupq_n_u8(3);
  const int8x16_t k32 = vdupq_n_s8(32);
  float32x4_t acc = vdupq_n_f32(0.0f);
  for (size_t b = 0; b < blocks; ++b, row += 210) {
    const float d = half(row + 208);
    const auto* sc = reinterpret_cast<const int8_t*>(row + 192);
    for (int n = 0; n < 2; ++n, x += 128) {
      const uint8_t* ql = row + 64 * n;
      const uint8_t* qh = row + 128 + 32 * n;
      const uint8x16_t h0 = vld1q_u8(qh), h1 = vld1q_u8(qh + 16);
      for (int k = 0; k < 4; ++k) {
        const uint8_t* lq = ql + 32 * (k % 2);
        uint8x16_t l0 = vld1q_u8(lq), l1 = vld1q_u8(lq + 16);
        if (k < 2) {
          l0 = vandq_u8(l0, nib);
          l1 = vandq_u8(l1, nib);
        } else {
          l0 = vshrq_n_u8(l0, 4);
          l1 = vshrq_n_u8(l1, 4);
        }
        const int8x16_t shift = vdupq_n_s8(static_cast<int8_t>(-2 * k));
        const uint8x16_t u0 = vorrq_u8(l0, vshlq_n_u8(vandq_u8(vshlq_u8(h0, shift), three), 4));
        const uint8x16_t u1 = vorrq_u8(l1, vshlq_n_u8(vandq_u8(vshlq_u8(h1, shift), three), 4));
        const float32x4_t s1 = dot16_s8(vsubq_s8(vreinterpretq_s8_u8(u0), k32), x + 32 * k);
        const float32x4_t s2 = dot16_s8(vsubq_s8(vreinterpretq_s8_u8(u1), k32), x + 32 * k + 16);
        acc = vfmaq_n_f32(acc, s1, d * static_cast<float>(sc[8 * n + 2 * k]));
        acc = vfmaq_n_f32(acc, s2, d * static_cast<float>(sc[8 * n + 2 * k + 1]));
      }
    }
  }
  return vaddvq_f32(acc);
}
#endif

}  // namespace

bool has_portable_kernel(DType t) { return t == DType::kQ4_K || t == DType::kQ5_K || t == DType::kQ6_K; }

float dot_portable(DType t, const uint8_t* row, const float* x, size_t blocks) {
#if defined(__aarch64__)
  switch (t) {
    case DType::kQ4_K: return dot_k45_neon<false>(row, x, blocks);
    case DType::kQ5_K: return dot_k45_neon<true>(row, x, blocks);
    case DType::kQ6_K: return dot_q6_k_neon(row, x, blocks);
    default: return 0.0f;
  }
#endif
  switch (t) {
    case DType::kQ4_K: return dot_k45<false>(row, x, blocks);
    case DType::kQ5_K: return dot_k45<true>(row, x, blocks);
    case DType::kQ6_K: return dot_q6_k(row, x, blocks);
    default: return 0.0f;
  }
}

}  // namespace pocketllm::kquant
