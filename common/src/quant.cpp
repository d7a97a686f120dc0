#include "pocketllm/common/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace pocketllm {
namespace {

template <class Block>
Block load(const uint8_t* p) {
  Block b;
  std::memcpy(&b, p, sizeof b);  // blocks are not aligned inside a file
  return b;
}

void dequantize_q8_0(const uint8_t* src, size_t blocks, float* y) {
  for (size_t i = 0; i < blocks; ++i, y += 32) {
    const auto b = load<BlockQ8_0>(src + i * sizeof(BlockQ8_0));
    const float d = f16_to_f32(b.d);
    for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(b.qs[j]) * d;
  }
}

void dequantize_q4_0(const uint8_t* src, size_t blocks, float* y) {
  for (size_t i = 0; i < blocks; ++i, y += 32) {
    const auto b = load<BlockQ4_0>(src + i * sizeof(BlockQ4_0));
    const float d = f16_to_f32(b.d);
    for (int j = 0; j < 16; ++j) {
      y[j] = static_cast<float>((b.qs[j] & 0x0F) - 8) * d;
      y[j + 16] = static_cast<float>((b.qs[j] >> 4) - 8) * d;
    }
  }
}

// Q5_K's fifth bit of element l of sub-block s (16 or 0); Q4_K has none.
template <bool kHigh, class Block>
int fifth(const Block& b, int l, int s) {
  if constexpr (kHigh) return (b.qh[l] >> s) & 1 ? 16 : 0;
  return 0;
}

// Sub-block j's 6-bit scale and min (j < 8) from Q4_K's 12 packed bytes: j < 4 in the low 6 bits of
// bytes j and j + 4; j >= 4 as the nibbles of byte j + 4 with their top 2 bits in bytes j - 4 and j.
void scale_min_k4(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Q4_K (kHigh false) and Q5_K (true, bit s of qh[l] adding 16 to element l of sub-block s).
template <class Block, bool kHigh>
void dequantize_k45(const uint8_t* src, size_t blocks, float* y) {
  for (size_t i = 0; i < blocks; ++i) {
    const auto b = load<Block>(src + i * sizeof(Block));
    const float d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
    const uint8_t* q = b.qs;
    for (int j = 0; j < 8; j += 2, q += 32) {
      uint8_t sc, m;
      scale_min_k4(j, b.scales, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      scale_min_k4(j + 1, b.scales, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>((q[l] & 0x0F) + fifth<kHigh>(b, l, j)) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>((q[l] >> 4) + fifth<kHigh>(b, l, j + 1)) - m2;
    }
  }
}

void dequantize_q6_k(const uint8_t* src, size_t blocks, float* y) {
  for (size_t i = 0; i < blocks; ++i) {
    const auto b = load<BlockQ6_K>(src + i * sizeof(BlockQ6_K));
    const float d = f16_to_f32(b.d);
    const uint8_t* ql = b.ql;
    const uint8_t* qh = b.qh;
    const int8_t* sc = b.scales;
    for (int n = 0; n < 256; n += 128, ql += 64, qh += 32, sc += 8, y += 128) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
        y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
    }
  }
}

void dequantize_q4_1(const uint8_t* src, size_t blocks, float* y) {
  for (size_t i = 0; i < blocks; ++i, y += 32) {
    const auto b = load<BlockQ4_1>(src + i * sizeof(BlockQ4_1));
    const float d = f16_to_f32(b.d), m = f16_to_f32(b.m);
    for (int j = 0; j < 16; ++j) {
      y[j] = static_cast<float>(b.qs[j] & 0x0F) * d + m;
      y[j + 16] = static_cast<float>(b.qs[j] >> 4) * d + m;
    }
  }
}

// Q5_0 / Q5_1: the low nibbles as Q4_0, the fifth bit of element j in bit j of qh (little-endian u32).
template <class Block, bool kOffset>
void dequantize_q5(const uint8_t* src, size_t blocks, float* y) {
  for (size_t i = 0; i < blocks; ++i, y += 32) {
    const auto b = load<Block>(src + i * sizeof(Block));
    uint32_t qh;
    std::memcpy(&qh, b.qh, 4);
    const float d = f16_to_f32(b.d);
    for (int j = 0; j < 16; ++j) {
      const int lo = (b.qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
      const int hi = (b.qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
      if constexpr (kOffset) {  // Q5_1: q · d + m
        const float m = f16_to_f32(b.m);
        y[j] = static_cast<float>(lo) * d + m;
        y[j + 16] = static_cast<float>(hi) * d + m;
      } else {  // Q5_0: (q − 16) · d
        y[j] = static_cast<float>(lo - 16) * d;
        y[j + 16] = static_cast<float>(hi - 16) * d;
      }
    }
  }
}

void dequantize_q2_k(const uint8_t* src, size_t blocks, float* y) {
  for (size_t i = 0; i < blocks; ++i) {
    const auto b = load<BlockQ2_K>(src + i * sizeof(BlockQ2_K));
    const float d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
    int s = 0;
    for (int n = 0; n < 2; ++n) {
      const uint8_t* q = b.qs + 32 * n;
      for (int shift = 0; shift < 8; shift += 2) {
        for (int half = 0; half < 2; ++half, ++s) {
          const float dl = d * static_cast<float>(b.scales[s] & 0x0F), ml = dmin * static_cast<float>(b.scales[s] >> 4);
          for (int l = 16 * half; l < 16 * half + 16; ++l) *y++ = dl * static_cast<float>((q[l] >> shift) & 3) - ml;
        }
      }
    }
  }
}

// Q3_K's 16 scales of 6 bits: the low 4 bits of scale s in the low (s < 8) or high (s >= 8) nibble of
// byte s mod 8, the top 2 bits at bits 2(s / 4) of byte 8 + s mod 4.
int scale_k3(const uint8_t* sc, int s) {
  const int low = s < 8 ? sc[s] & 0x0F : sc[s - 8] >> 4;
  const int high = (sc[8 + s % 4] >> (2 * (s / 4))) & 3;
  return low | (high << 4);
}

void dequantize_q3_k(const uint8_t* src, size_t blocks, float* y) {
  for (size_t i = 0; i < blocks; ++i) {
    const auto b = load<BlockQ3_K>(src + i * sizeof(BlockQ3_K));
    const float d = f16_to_f32(b.d);
    int s = 0, bit = 0;
    for (int n = 0; n < 2; ++n) {
      const uint8_t* q = b.qs + 32 * n;
      for (int shift = 0; shift < 8; shift += 2, ++bit) {
        for (int half = 0; half < 2; ++half, ++s) {
          const float dl = d * static_cast<float>(scale_k3(b.scales, s) - 32);
          for (int l = 16 * half; l < 16 * half + 16; ++l) {
            const int v = ((q[l] >> shift) & 3) - ((b.hmask[l] >> bit) & 1 ? 0 : 4);
            *y++ = dl * static_cast<float>(v);
          }
        }
      }
    }
  }
}

}  // namespace

void dequantize(DType t, const void* src, size_t count, float* out) {
  const auto* p = static_cast<const uint8_t*>(src);
  switch (t) {
    case DType::kQ8_0: dequantize_q8_0(p, count / 32, out); break;
    case DType::kQ4_0: dequantize_q4_0(p, count / 32, out); break;
    case DType::kQ4_K: dequantize_k45<BlockQ4_K, false>(p, count / 256, out); break;
    case DType::kQ6_K: dequantize_q6_k(p, count / 256, out); break;
    case DType::kQ4_1: dequantize_q4_1(p, count / 32, out); break;
    case DType::kQ5_0: dequantize_q5<BlockQ5_0, false>(p, count / 32, out); break;
    case DType::kQ5_1: dequantize_q5<BlockQ5_1, true>(p, count / 32, out); break;
    case DType::kQ2_K: dequantize_q2_k(p, count / 256, out); break;
    case DType::kQ3_K: dequantize_q3_k(p, count / 256, out); break;
    case DType::kQ5_K: dequantize_k45<BlockQ5_K, true>(p, count / 256, out); break;
    default: break;
  }
}

void quantize_q8_0(const float* x, size_t count, void* dst) {
  auto* out = static_cast<uint8_t*>(dst);
  for (size_t i = 0; i < count / 32; ++i, x += 32) {
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ8_0 b;
    b.d = f32_to_f16(d);
    for (int j = 0; j < 32; ++j) b.qs[j] = static_cast<int8_t>(std::round(x[j] * id));
    std::memcpy(out + i * sizeof b, &b, sizeof b);
  }
}

void quantize_q4_0(const float* x, size_t count, void* dst) {
  auto* out = static_cast<uint8_t*>(dst);
  for (size_t i = 0; i < count / 32; ++i, x += 32) {
    float amax = 0.0f, max = 0.0f;  // the element of largest magnitude, with its sign
    for (int j = 0; j < 32; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ4_0 b;
    b.d = f32_to_f16(d);
    for (int j = 0; j < 16; ++j) {
      const float x0 = x[j] * id, x1 = x[j + 16] * id;
      const int q0 = std::min(15, static_cast<int>(static_cast<int8_t>(x0 + 8.5f)));
      const int q1 = std::min(15, static_cast<int>(static_cast<int8_t>(x1 + 8.5f)));
      b.qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
    std::memcpy(out + i * sizeof b, &b, sizeof b);
  }
}

bool quantize_checked(DType t, const float* x, size_t count, void* dst) {
  for (size_t i = 0; i < count; ++i)
    if (!std::isfinite(x[i])) return false;
  if (t == DType::kQ8_0) quantize_q8_0(x, count, dst);
  else if (t == DType::kQ4_0) quantize_q4_0(x, count, dst);
  else return false;
  return true;
}

}  // namespace pocketllm
