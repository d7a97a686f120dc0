// The packed int8 kernels of x86-64 (AVX-512 VNNI): layouts, activation quantization and products
// (kernels_quant_packed_isa.h). Compiled on every x86-64 build with per-function target attributes and
// chosen at run time, so a portable library (the SDK) uses them on CPUs that have AVX-512 VNNI.
#include "kernels_quant_packed.h"
#include "kernels_quant_packed_isa.h"

#ifdef POCKETLLM_PACKED_X86
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels.h"
#include "kernels_kquant_packed.h"
#include "pocketllm/common/cpu_features.h"

#define PLLM_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

namespace pocketllm {

namespace {

using packed_isa::kRows;  // rows per packed group: one 512-bit vector of int32 lanes
// One block of 16 rows: f16 scales[16]; Q8_0 only: int16 sums[16] (each row's sum of its 32 quants);
// then the quants as groups of 4 consecutive elements per row: Q8_0 8 groups x 16 rows x 4 bytes; Q4_0
// 4 x 16 x 4 bytes of nibbles (byte 4g+i of a row's block: element 4g+i low, 16+4g+i high, as in the
// file). Q4_0 packs into exactly the file's size (288 bytes per 16 blocks), Q8_0 into 576 (file: 544).
constexpr size_t kQ8Block = 32 + 32 + 512, kQ4Block = 32 + 256;
size_t packed_block_bytes(DType t) { return t == DType::kQ8_0 ? kQ8Block : kQ4Block; }

}  // namespace

PLLM_VNNI void quantize_activations(const float* x, size_t m, size_t k, DType weight_type, PackedActivations* out) {
  const bool offset128 = weight_type == DType::kQ8_0;
  out->m = m;
  out->k = k;
  out->offset128 = offset128;
  const size_t blocks = k / 32;
  out->q.resize(m * k);
  out->d.resize(m * blocks);
  out->sum.resize(m * blocks);
  const bool halves = weight_type == DType::kQ6_K;
  out->sum16.resize(halves ? 2 * m * blocks : 0);
  for (size_t r = 0; r < m; ++r) {
    for (size_t b = 0; b < blocks; ++b) {
      const float* v = x + r * k + b * 32;
      const __m512 a0 = _mm512_loadu_ps(v), a1 = _mm512_loadu_ps(v + 16);
      const __m512 inf = _mm512_set1_ps(INFINITY);
      if ((_mm512_cmp_ps_mask(_mm512_abs_ps(a0), inf, _CMP_LT_OQ) & _mm512_cmp_ps_mask(_mm512_abs_ps(a1), inf, _CMP_LT_OQ)) != 0xFFFF) {
        // A non-finite activation: the block's products are NaN, as the float product would be.
        std::memset(out->q.data() + r * k + b * 32, offset128 ? 0x80 : 0, 32);
        out->sum[r * blocks + b] = 0;
        if (halves) out->sum16[2 * (r * blocks + b)] = out->sum16[2 * (r * blocks + b) + 1] = 0;
        out->d[r * blocks + b] = NAN;
        continue;
      }
      const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a0), _mm512_abs_ps(a1)));
      const float d = amax / 127.0f;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(a0, _mm512_set1_ps(id)));  // round to nearest even
      const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(a1, _mm512_set1_ps(id)));
      out->sum[r * blocks + b] = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
      if (halves) {
        out->sum16[2 * (r * blocks + b)] = _mm512_reduce_add_epi32(q0);
        out->sum16[2 * (r * blocks + b) + 1] = _mm512_reduce_add_epi32(q1);
      }
      __m128i b0 = _mm512_cvtsepi32_epi8(q0), b1 = _mm512_cvtsepi32_epi8(q1);
      if (offset128) {
        const __m128i bias = _mm_set1_epi8(static_cast<char>(0x80));
        b0 = _mm_xor_si128(b0, bias);  // q + 128 as an unsigned byte
        b1 = _mm_xor_si128(b1, bias);
      }
      uint8_t* dst = out->q.data() + r * k + b * 32;
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), b0);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 16), b1);
      out->d[r * blocks + b] = d;
    }
  }
}

namespace {

// Rows [m0, m1) of the activations against one group of 16 packed rows; results at y[(r - m0) * ldy].
template <bool kQ8>
PLLM_VNNI void packed_group(const uint8_t* packed, size_t blocks, const PackedActivations& xq, size_t k, size_t m0, size_t m1, float* y,
                  size_t ldy) {
  constexpr size_t kTile = 4;
  const size_t bb = kQ8 ? kQ8Block : kQ4Block, quants = kQ8 ? 64 : 32;
  for (size_t mt = m0; mt < m1; mt += kTile) {
    const size_t rows = std::min(kTile, m1 - mt);
    __m512 acc[kTile];
    for (auto& a : acc) a = _mm512_setzero_ps();
    for (size_t b = 0; b < blocks; ++b) {
      const uint8_t* sb = packed + b * bb;
      // About 4.5 KiB ahead (groups lie back to back; a prefetch never faults): decoding streams every
      // weight from memory once, faster than the hardware prefetcher alone fetches it.
      for (size_t off = 0; off < bb; off += 64) _mm_prefetch(reinterpret_cast<const char*>(sb + 4608 + off), _MM_HINT_T0);
      const __m512 scale = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb)));
      __m512i w[8];
      __m512i corr = _mm512_setzero_si512();
      if (kQ8) {
        for (int g = 0; g < 8; ++g) w[g] = _mm512_loadu_si512(sb + quants + 64 * g);
        // 128 * the row's quant sum
        corr = _mm512_slli_epi32(_mm512_cvtepi16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb + 32))), 7);
      } else {
        const __m512i mask = _mm512_set1_epi8(0x0F);
        for (int g = 0; g < 4; ++g) {
          const __m512i raw = _mm512_loadu_si512(sb + quants + 64 * g);
          w[g] = _mm512_and_si512(raw, mask);
          w[g + 4] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), mask);
        }
      }
      for (size_t i = 0; i < rows; ++i) {
        const size_t r = mt + i;
        const uint8_t* xb = xq.q.data() + r * k + b * 32;
        int32_t g4[8];
        std::memcpy(g4, xb, 32);
        __m512i s = _mm512_setzero_si512();
        if (kQ8) {
          for (int g = 0; g < 8; ++g) s = _mm512_dpbusd_epi32(s, _mm512_set1_epi32(g4[g]), w[g]);
          s = _mm512_sub_epi32(s, corr);
        } else {
          for (int g = 0; g < 8; ++g) s = _mm512_dpbusd_epi32(s, w[g], _mm512_set1_epi32(g4[g]));
          s = _mm512_sub_epi32(s, _mm512_slli_epi32(_mm512_set1_epi32(xq.sum[r * blocks + b]), 3));  // 8 * sum
        }
        acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(scale, _mm512_set1_ps(xq.d[r * blocks + b])), acc[i]);
      }
    }
    for (size_t i = 0; i < rows; ++i) _mm512_storeu_ps(y + (mt + i - m0) * ldy, acc[i]);
  }
}

// The Q8_0/Q4_0 layout of one group of 16 rows (src: the group's first row in the file).
void pack_group_legacy(DType t, const uint8_t* src, size_t blocks, uint8_t* dst) {
  const bool q8 = t == DType::kQ8_0;
  const size_t bb = packed_block_bytes(t), src_bb = dtype_block_bytes(t), quants = q8 ? 64 : 32;
  for (size_t b = 0; b < blocks; ++b, dst += bb) {
    for (size_t i = 0; i < kRows; ++i) {
      const uint8_t* blk = src + (i * blocks + b) * src_bb;
      std::memcpy(dst + 2 * i, blk, 2);  // the f16 scale as stored
      const uint8_t* qs = blk + 2;
      for (size_t g = 0; g < (q8 ? 8 : 4); ++g) std::memcpy(dst + quants + 64 * g + 4 * i, qs + 4 * g, 4);
      if (q8) {
        int16_t sum = 0;
        for (int j = 0; j < 32; ++j) sum = static_cast<int16_t>(sum + static_cast<int8_t>(qs[j]));
        std::memcpy(dst + 32 + 2 * i, &sum, 2);
      }
    }
  }
}

}  // namespace

namespace packed_isa {

const char* detect(const char* wanted) {
  const CpuFeatures& c = cpu_features();
  const bool ok = c.avx512f && c.avx512bw && c.avx512vl && c.avx512vnni && c.f16c && c.fma && c.avx2;
  if (!ok || (wanted != nullptr && std::strcmp(wanted, "off") == 0)) return nullptr;
  return "AVX-512 VNNI";
}

bool handles(DType t) { return t == DType::kQ8_0 || t == DType::kQ4_0 || kpacked::handles(t); }

size_t group_bytes(DType t, size_t k) {
  return kpacked::handles(t) ? kpacked::group_bytes(t, k / 256) : (k / 32) * packed_block_bytes(t);
}

void pack_group(DType t, const uint8_t* src, size_t row_bytes, size_t k, uint8_t* dst) {
  if (kpacked::handles(t)) kpacked::pack_group(t, src, row_bytes, k / 256, dst);
  else pack_group_legacy(t, src, k / 32, dst);
}

}  // namespace packed_isa

PLLM_VNNI void packed_product(const PackedActivations& x, size_t m0, size_t m1, const Weight& w, size_t row0, size_t nrows,
                              float* y, size_t ldy) {
  const size_t k = w.cols(), blocks = k / 32, gbytes = packed_isa::group_bytes(w.dtype, k);
  for (size_t g = row0 / kRows; g < (row0 + nrows) / kRows; ++g) {
    const uint8_t* p = w.packed + g * gbytes;
    float* yg = y + (g * kRows - row0);
    if (kpacked::handles(w.dtype)) kpacked::product_group(w.dtype, p, k / 256, x, m0, m1, yg, ldy);
    else if (w.dtype == DType::kQ8_0) packed_group<true>(p, blocks, x, k, m0, m1, yg, ldy);
    else packed_group<false>(p, blocks, x, k, m0, m1, yg, ldy);
  }
}

PLLM_VNNI void unpack_rows(const Weight& w, size_t row0, size_t nrows, float* out) {
  const size_t k = w.cols(), blocks = k / 32, bb = packed_block_bytes(w.dtype);
  if (kpacked::handles(w.dtype)) {
    for (size_t r = row0; r < row0 + nrows; ++r, out += k)
      kpacked::unpack_row(w.dtype, w.packed + (r / kRows) * packed_isa::group_bytes(w.dtype, k), k / 256, r % kRows, out);
    return;
  }
  const bool q8 = w.dtype == DType::kQ8_0;
  const size_t quants = q8 ? 64 : 32;
  for (size_t r = row0; r < row0 + nrows; ++r) {
    const size_t g = r / kRows, lane = r % kRows;
    for (size_t b = 0; b < blocks; ++b, out += 32) {
      const uint8_t* sb = w.packed + (g * blocks + b) * bb;
      uint16_t h;
      std::memcpy(&h, sb + 2 * lane, 2);
      const float d = _cvtsh_ss(h);
      for (int grp = 0; grp < (q8 ? 8 : 4); ++grp) {
        const uint8_t* q = sb + quants + 64 * grp + 4 * lane;
        for (int i = 0; i < 4; ++i) {
          if (q8) {
            out[4 * grp + i] = static_cast<float>(static_cast<int8_t>(q[i])) * d;
          } else {
            out[4 * grp + i] = static_cast<float>((q[i] & 0x0F) - 8) * d;
            out[16 + 4 * grp + i] = static_cast<float>((q[i] >> 4) - 8) * d;
          }
        }
      }
    }
  }
}

}  // namespace pocketllm

#endif  // POCKETLLM_PACKED_X86
