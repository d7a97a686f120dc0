// The packed int8 kernels of arm64 (kernels_quant_packed_isa.h) for Q8_0 and Q4_0 weights: smmla on
// cores with i8mm (Armv8.6; Cortex-A510/A710/X2 and later, Neoverse V1/N2), sdot on cores with dotprod
// (Armv8.2; Cortex-A55/A75 and later). Compiled into every arm64 build with per-function target
// attributes and chosen at run time from the kernel's hwcaps, so the baseline Armv8.0 library (the
// mobile SDK) uses them where the core has the instructions. Armv8.0 cores keep the dequantized tiles.
//
// Both layouts keep the file's bytes per group of 16 rows and 32-element block (Q8_0 544 bytes, Q4_0
// 288: the packed copy is exactly the file's size): the 16 f16 scales, then the quants reordered.
//   dotprod: 4-byte chunks, chunk g of row i at 32 + 64g + 4i (Q8_0: elements 4g..4g+3; Q4_0: the file's
//            bytes 4g..4g+3, low nibbles elements 4g.., high 16 + 4g..), so one 16-byte load holds 4
//            elements of 4 rows and `sdot` by lane multiplies them by 4 activation bytes.
//   i8mm:    row pairs, 8-byte chunks, chunk c of rows 2p and 2p + 1 at 32 + Q·p + 16c (Q = 64 for
//            Q8_0, elements 8c..8c+7; Q = 32 for Q4_0, the file's bytes 8c..8c+7), so one `smmla`
//            multiplies 8 elements of two weight rows by the same 8 of two activation rows.
// Activations are signed bytes (PackedActivations::offset128 false). Q4_0's nibbles enter as 0..15, and
// 8 · Σ x_q is subtracted per block. Layouts and arithmetic: docs/gguf.md §7.
#include "kernels_quant_packed.h"
#include "kernels_quant_packed_isa.h"

#ifdef POCKETLLM_PACKED_ARM
#include <arm_neon.h>

#include <algorithm>
#include <cstring>

#include "kernels_kquant.h"
#include "pocketllm/common/cpu_features.h"

#define PLLM_SDOT __attribute__((target("arch=armv8.2-a+dotprod")))
#define PLLM_I8MM __attribute__((target("arch=armv8.2-a+dotprod+i8mm")))

namespace pocketllm {
namespace {

using packed_isa::kRows;
constexpr size_t kScaleBytes = 2 * kRows;

template <bool kQ8>
constexpr size_t block_bytes() { return kScaleBytes + (kQ8 ? 512 : 256); }
size_t block_bytes(DType t) { return t == DType::kQ8_0 ? block_bytes<true>() : block_bytes<false>(); }

bool use_i8mm() {
  static const bool v = packed_quant_path() != nullptr && std::strcmp(packed_quant_path(), "i8mm") == 0;
  return v;
}

// Offset within a packed block of quant byte j (< 32 for Q8_0, < 16 for Q4_0) of row `lane`.
size_t quant_offset(bool i8mm, bool q8, size_t lane, size_t j) {
  if (i8mm) return kScaleBytes + (q8 ? 64 : 32) * (lane / 2) + 16 * (j / 8) + 8 * (lane % 2) + j % 8;
  return kScaleBytes + 64 * (j / 4) + 4 * lane + j % 4;
}

inline float32x4_t scales4(const uint8_t* sb, size_t q) {
  return vcvt_f32_f16(vld1_f16(reinterpret_cast<const float16_t*>(sb) + 4 * q));
}

// dotprod: activation rows [mt, mt + R) against one group of 16 packed rows; row mt's results at y. The
// group goes in two halves of 8 weight rows (two passes over the blocks), so R x 8 accumulators, the 8
// weight vectors of a quad and one activation row fit the 32 vector registers without spills.
template <bool kQ8, size_t R>
PLLM_SDOT void tile_sdot(const uint8_t* packed, size_t blocks, const PackedActivations& xq, size_t mt, float* y, size_t ldy) {
  const size_t k = xq.k;
  const auto* xbase = reinterpret_cast<const int8_t*>(xq.q.data());
  for (size_t half = 0; half < 2; ++half) {
    float32x4_t acc[R][2];
#pragma GCC unroll 8
    for (auto& row : acc)
      for (auto& a : row) a = vdupq_n_f32(0.0f);
    for (size_t b = 0; b < blocks; ++b) {
      const uint8_t* sb = packed + b * block_bytes<kQ8>();
#pragma GCC unroll 8
      for (size_t qq = 0; qq < 2; ++qq) {  // rows 4q..4q+3 of the group
        const size_t q = 2 * half + qq;
        const float32x4_t dw = scales4(sb, q);
        const uint8_t* w = sb + kScaleBytes + 16 * q;
        int8x16_t wv[8];  // wv[g]: elements of x0 lane g (g < 4) or x1 lane g - 4
        if (kQ8) {
#pragma GCC unroll 8
          for (int g = 0; g < 8; ++g) wv[g] = vld1q_s8(reinterpret_cast<const int8_t*>(w + 64 * g));
        } else {
#pragma GCC unroll 8
          for (int g = 0; g < 4; ++g) {
            const uint8x16_t raw = vld1q_u8(w + 64 * g);
            wv[g] = vreinterpretq_s8_u8(vandq_u8(raw, vdupq_n_u8(0x0F)));
            wv[g + 4] = vreinterpretq_s8_u8(vshrq_n_u8(raw, 4));
          }
        }
#pragma GCC unroll 8
        for (size_t i = 0; i < R; ++i) {
          const int8_t* xb = xbase + (mt + i) * k + b * 32;
          const int8x16_t x0 = vld1q_s8(xb), x1 = vld1q_s8(xb + 16);
          int32x4_t s = vdotq_laneq_s32(vdupq_n_s32(0), wv[0], x0, 0);
          s = vdotq_laneq_s32(s, wv[1], x0, 1);
          s = vdotq_laneq_s32(s, wv[2], x0, 2);
          s = vdotq_laneq_s32(s, wv[3], x0, 3);
          s = vdotq_laneq_s32(s, wv[4], x1, 0);
          s = vdotq_laneq_s32(s, wv[5], x1, 1);
          s = vdotq_laneq_s32(s, wv[6], x1, 2);
          s = vdotq_laneq_s32(s, wv[7], x1, 3);
          if (!kQ8) s = vsubq_s32(s, vdupq_n_s32(8 * xq.sum[(mt + i) * blocks + b]));
          acc[i][qq] = vfmaq_f32(acc[i][qq], vcvtq_f32_s32(s), vmulq_n_f32(dw, xq.d[(mt + i) * blocks + b]));
        }
      }
    }
#pragma GCC unroll 8
    for (size_t i = 0; i < R; ++i)
      for (size_t qq = 0; qq < 2; ++qq) vst1q_f32(y + i * ldy + 8 * half + 4 * qq, acc[i][qq]);
  }
}

// Rows [m0, m1) in tiles of 4, the last tile as wide as the rows left (decoding runs one row).
template <bool kQ8>
void group_sdot(const uint8_t* packed, size_t blocks, const PackedActivations& xq, size_t m0, size_t m1, float* y, size_t ldy) {
  size_t mt = m0;
  for (; mt + 4 <= m1; mt += 4) tile_sdot<kQ8, 4>(packed, blocks, xq, mt, y + (mt - m0) * ldy, ldy);
  float* yt = y + (mt - m0) * ldy;
  switch (m1 - mt) {
    case 3: tile_sdot<kQ8, 3>(packed, blocks, xq, mt, yt, ldy); break;
    case 2: tile_sdot<kQ8, 2>(packed, blocks, xq, mt, yt, ldy); break;
    case 1: tile_sdot<kQ8, 1>(packed, blocks, xq, mt, yt, ldy); break;
    default: break;
  }
}

// i8mm: the same product with smmla on P pairs of activation rows [mt, m1) (at most 2P rows; an odd
// last row is paired with itself and its copy not stored) against the group's weight rows in two halves
// of 4 pairs, each pair's int32 result [a·w0, a·w1, b·w0, b·w1].
template <bool kQ8, size_t P>
PLLM_I8MM void tile_i8mm(const uint8_t* packed, size_t blocks, const PackedActivations& xq, size_t mt, size_t m1, float* y,
                         size_t ldy) {
  const size_t k = xq.k;
  const auto* xbase = reinterpret_cast<const int8_t*>(xq.q.data());
  size_t r[2 * P];
  for (size_t i = 0; i < 2 * P; ++i) r[i] = std::min(mt + i, m1 - 1);
  for (size_t half = 0; half < 2; ++half) {
    float32x4_t acc[P][4];
#pragma GCC unroll 8
    for (auto& pair : acc)
      for (auto& a : pair) a = vdupq_n_f32(0.0f);
    for (size_t b = 0; b < blocks; ++b) {
      const uint8_t* sb = packed + b * block_bytes<kQ8>();
      const float32x4_t dws[2] = {scales4(sb, 2 * half), scales4(sb, 2 * half + 1)};
#pragma GCC unroll 8
      for (size_t h = 0; h < P; ++h) {
        const size_t ra = r[2 * h], rb = r[2 * h + 1];
        const int8_t *xa = xbase + ra * k + b * 32, *xb = xbase + rb * k + b * 32;
        int8x16_t xv[4];  // xv[c]: elements 8c..8c+7 of both rows
#pragma GCC unroll 8
        for (int c = 0; c < 4; ++c) xv[c] = vcombine_s8(vld1_s8(xa + 8 * c), vld1_s8(xb + 8 * c));
        const float32x4_t dx = vcombine_f32(vdup_n_f32(xq.d[ra * blocks + b]), vdup_n_f32(xq.d[rb * blocks + b]));
        const int32x4_t corr = vcombine_s32(vdup_n_s32(8 * xq.sum[ra * blocks + b]), vdup_n_s32(8 * xq.sum[rb * blocks + b]));
#pragma GCC unroll 8
        for (size_t pp = 0; pp < 4; ++pp) {
          const size_t p = 4 * half + pp;  // weight rows 2p, 2p + 1
          int32x4_t s = vdupq_n_s32(0);
          if (kQ8) {
            const auto* w = reinterpret_cast<const int8_t*>(sb + kScaleBytes + 64 * p);
#pragma GCC unroll 8
            for (int c = 0; c < 4; ++c) s = vmmlaq_s32(s, xv[c], vld1q_s8(w + 16 * c));
          } else {
            const uint8_t* w = sb + kScaleBytes + 32 * p;
            const uint8x16_t raw0 = vld1q_u8(w), raw1 = vld1q_u8(w + 16), mask = vdupq_n_u8(0x0F);
            s = vmmlaq_s32(s, xv[0], vreinterpretq_s8_u8(vandq_u8(raw0, mask)));
            s = vmmlaq_s32(s, xv[1], vreinterpretq_s8_u8(vandq_u8(raw1, mask)));
            s = vmmlaq_s32(s, xv[2], vreinterpretq_s8_u8(vshrq_n_u8(raw0, 4)));
            s = vmmlaq_s32(s, xv[3], vreinterpretq_s8_u8(vshrq_n_u8(raw1, 4)));
            s = vsubq_s32(s, corr);
          }
          const float32x2_t dw2 = pp % 2 == 0 ? vget_low_f32(dws[pp / 2]) : vget_high_f32(dws[pp / 2]);
          acc[h][pp] = vfmaq_f32(acc[h][pp], vcvtq_f32_s32(s), vmulq_f32(vcombine_f32(dw2, dw2), dx));
        }
      }
    }
#pragma GCC unroll 8
    for (size_t h = 0; h < P; ++h) {
      const size_t ra = mt + 2 * h;
      for (size_t pp = 0; pp < 4 && ra < m1; ++pp) {
        const size_t col = 2 * (4 * half + pp);
        vst1_f32(y + 2 * h * ldy + col, vget_low_f32(acc[h][pp]));
        if (ra + 1 < m1) vst1_f32(y + (2 * h + 1) * ldy + col, vget_high_f32(acc[h][pp]));
      }
    }
  }
}

// Rows [m0, m1) in tiles of two pairs, the last tile one pair when two rows or fewer are left.
template <bool kQ8>
void group_i8mm(const uint8_t* packed, size_t blocks, const PackedActivations& xq, size_t m0, size_t m1, float* y, size_t ldy) {
  for (size_t mt = m0; mt < m1; mt += 4) {
    if (m1 - mt > 2) tile_i8mm<kQ8, 2>(packed, blocks, xq, mt, m1, y + (mt - m0) * ldy, ldy);
    else tile_i8mm<kQ8, 1>(packed, blocks, xq, mt, m1, y + (mt - m0) * ldy, ldy);
  }
}

}  // namespace

namespace packed_isa {

const char* detect(const char* wanted) {
  const CpuFeatures& c = cpu_features();
  if (wanted != nullptr && std::strcmp(wanted, "off") == 0) return nullptr;
  if (c.arm_i8mm && c.arm_dotprod && !(wanted != nullptr && std::strcmp(wanted, "dotprod") == 0)) return "i8mm";
  return c.arm_dotprod ? "dotprod" : nullptr;
}

bool handles(DType t) { return t == DType::kQ8_0 || t == DType::kQ4_0; }

size_t group_bytes(DType t, size_t k) { return (k / 32) * block_bytes(t); }

void pack_group(DType t, const uint8_t* src, size_t row_bytes, size_t k, uint8_t* dst) {
  const bool q8 = t == DType::kQ8_0, mm = use_i8mm();
  const size_t blocks = k / 32, src_bb = dtype_block_bytes(t), bb = block_bytes(t), qbytes = q8 ? 32 : 16;
  const size_t run = mm ? 8 : 4;  // bytes of a row that stay together
  for (size_t b = 0; b < blocks; ++b, dst += bb) {
    for (size_t i = 0; i < kRows; ++i) {
      const uint8_t* blk = src + i * row_bytes + b * src_bb;
      std::memcpy(dst + 2 * i, blk, 2);  // the f16 scale as stored
      for (size_t j = 0; j < qbytes; j += run) std::memcpy(dst + quant_offset(mm, q8, i, j), blk + 2 + j, run);
    }
  }
}

}  // namespace packed_isa

void quantize_activations(const float* x, size_t m, size_t k, DType weight_type, PackedActivations* out) {
  const size_t blocks = k / 32;
  out->m = m;
  out->k = k;
  out->offset128 = false;
  out->q.resize(m * k);
  out->d.resize(m * blocks);
  out->sum.resize(m * blocks);
  out->sum16.clear();
  for (size_t r = 0; r < m; ++r) {
    auto* q = reinterpret_cast<int8_t*>(out->q.data() + r * k);
    // d = max|x| / 127, q = round-half-even(x / d); a block with a non-finite value gets d = NaN, q = 0.
    kquant::quantize_activations(x + r * k, k, q, out->d.data() + r * blocks, nullptr);
    if (weight_type != DType::kQ4_0) continue;
    for (size_t b = 0; b < blocks; ++b) {
      int32_t s = 0;
      for (size_t j = 0; j < 32; ++j) s += q[b * 32 + j];
      out->sum[r * blocks + b] = s;
    }
  }
}

void packed_product(const PackedActivations& x, size_t m0, size_t m1, const Weight& w, size_t row0, size_t nrows, float* y,
                    size_t ldy) {
  if (m1 <= m0) return;
  const size_t k = w.cols(), blocks = k / 32, gbytes = packed_isa::group_bytes(w.dtype, k);
  const bool q8 = w.dtype == DType::kQ8_0, mm = use_i8mm();
  for (size_t g = row0 / kRows; g < (row0 + nrows) / kRows; ++g) {
    const uint8_t* p = w.packed + g * gbytes;
    float* yg = y + (g * kRows - row0);
    if (mm) q8 ? group_i8mm<true>(p, blocks, x, m0, m1, yg, ldy) : group_i8mm<false>(p, blocks, x, m0, m1, yg, ldy);
    else q8 ? group_sdot<true>(p, blocks, x, m0, m1, yg, ldy) : group_sdot<false>(p, blocks, x, m0, m1, yg, ldy);
  }
}

void unpack_rows(const Weight& w, size_t row0, size_t nrows, float* out) {
  const size_t k = w.cols(), blocks = k / 32, bb = block_bytes(w.dtype);
  const bool q8 = w.dtype == DType::kQ8_0, mm = use_i8mm();
  for (size_t r = row0; r < row0 + nrows; ++r) {
    const size_t lane = r % kRows;
    for (size_t b = 0; b < blocks; ++b, out += 32) {
      const uint8_t* sb = w.packed + ((r / kRows) * blocks + b) * bb;
      uint16_t h;
      std::memcpy(&h, sb + 2 * lane, 2);
      const float d = f16_to_f32(h);
      for (size_t j = 0; j < (q8 ? 32u : 16u); ++j) {
        const uint8_t v = sb[quant_offset(mm, q8, lane, j)];
        if (q8) {
          out[j] = static_cast<float>(static_cast<int8_t>(v)) * d;
        } else {
          out[j] = static_cast<float>((v & 0x0F) - 8) * d;
          out[16 + j] = static_cast<float>((v >> 4) - 8) * d;
        }
      }
    }
  }
}

}  // namespace pocketllm

#endif  // POCKETLLM_PACKED_ARM
