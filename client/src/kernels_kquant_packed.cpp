#include "kernels_kquant_packed.h"

#include <algorithm>
#include <cstring>

#include "pocketllm/common/quant.h"

// Compiled on every x86-64 build with per-function target attributes; called only when
// packed_quant_kernels_available() (AVX-512 VNNI), as the Q8_0/Q4_0 kernels are.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define POCKETLLM_KPACKED_VNNI 1
#define PLLM_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#endif

namespace pocketllm::kpacked {
namespace {

constexpr size_t kRows = 16;

// One super-block of 16 rows, offsets in bytes (docs/gguf.md §7). A "plane" is 32 bytes of every row in
// 8 groups of 4: byte 4g + c of row i at 64g + 4i + c, so one 64-byte load holds 4 bytes of each row.
//   Q4_K: d f16[16] @0, dmin f16[16] @32, scale byte b (12 per row) of row i @64 + 16b + i, then qs as
//         4 planes (qs[32j .. 32j + 31], j = 0..3) @256 -> 2 304 bytes (16 x 144)
//   Q5_K: as Q4_K, then the qh plane @256 and the 4 qs planes @768 -> 2 816 bytes (16 x 176)
//   Q6_K: d f16[16] @0, scale t (16 per row) of row i @32 + 16t + i, then per half h (128 elements) @288 +
//         1 536h: the planes ql[64h .. 64h + 31], ql[64h + 32 .. 64h + 63] and qh[32h .. 32h + 31]
//         -> 3 360 bytes (16 x 210)
constexpr size_t kQ4KGroup = 2304, kQ5KGroup = 2816, kQ6KGroup = 3360;
constexpr size_t kQ4KBlock = sizeof(BlockQ4_K), kQ5KBlock = sizeof(BlockQ5_K), kQ6KBlock = sizeof(BlockQ6_K);

void to_plane(const uint8_t* src32, size_t row, uint8_t* plane) {
  for (size_t g = 0; g < 8; ++g) std::memcpy(plane + 64 * g + 4 * row, src32 + 4 * g, 4);
}
void from_plane(const uint8_t* plane, size_t row, uint8_t* dst32) {
  for (size_t g = 0; g < 8; ++g) std::memcpy(dst32 + 4 * g, plane + 64 * g + 4 * row, 4);
}

// The file's block of row `row` <-> its place in a packed super-block (dir true: into the packed copy).
template <bool kToPacked>
void move_block(DType t, uint8_t* file_block, uint8_t* packed, size_t row) {
  auto bytes = [&](size_t file_off, size_t packed_off, size_t n, size_t stride) {
    for (size_t b = 0; b < n; ++b) {
      uint8_t* p = packed + packed_off + stride * b + row * (stride == 16 ? 1 : n);
      if (kToPacked) *p = file_block[file_off + b];
      else file_block[file_off + b] = *p;
    }
  };
  auto plane = [&](size_t file_off, size_t packed_off) {
    if (kToPacked) to_plane(file_block + file_off, row, packed + packed_off);
    else from_plane(packed + packed_off, row, file_block + file_off);
  };
  if (t == DType::kQ6_K) {
    bytes(208, 0, 2, 1);    // d: 2 bytes at 2 * row
    bytes(192, 32, 16, 16);  // int8 scales
    for (size_t h = 0; h < 2; ++h) {
      plane(64 * h, 288 + 1536 * h);
      plane(64 * h + 32, 288 + 1536 * h + 512);
      plane(128 + 32 * h, 288 + 1536 * h + 1024);
    }
    return;
  }
  bytes(0, 0, 2, 1);     // d
  bytes(2, 32, 2, 1);    // dmin
  bytes(4, 64, 12, 16);  // the 12 bytes of 6-bit scales and minimums
  const bool q5 = t == DType::kQ5_K;
  if (q5) plane(16, 256);
  for (size_t j = 0; j < 4; ++j) plane((q5 ? 48 : 16) + 32 * j, (q5 ? 768 : 256) + 512 * j);
}

size_t file_block_bytes(DType t) { return t == DType::kQ4_K ? kQ4KBlock : t == DType::kQ5_K ? kQ5KBlock : kQ6KBlock; }

}  // namespace

bool handles(DType t) { return t == DType::kQ4_K || t == DType::kQ5_K || t == DType::kQ6_K; }

size_t group_bytes(DType t, size_t superblocks) {
  return superblocks * (t == DType::kQ4_K ? kQ4KGroup : t == DType::kQ5_K ? kQ5KGroup : kQ6KGroup);
}

void pack_group(DType t, const uint8_t* src, size_t row_bytes, size_t superblocks, uint8_t* dst) {
  const size_t fb = file_block_bytes(t), gb = group_bytes(t, 1);
  uint8_t block[kQ6KBlock];
  for (size_t sb = 0; sb < superblocks; ++sb) {
    for (size_t i = 0; i < kRows; ++i) {
      std::memcpy(block, src + i * row_bytes + sb * fb, fb);
      move_block<true>(t, block, dst + sb * gb, i);
    }
  }
}

void unpack_row(DType t, const uint8_t* group, size_t superblocks, size_t lane, float* out) {
  const size_t gb = group_bytes(t, 1);
  uint8_t block[kQ6KBlock];
  for (size_t sb = 0; sb < superblocks; ++sb, out += 256) {
    move_block<false>(t, block, const_cast<uint8_t*>(group + sb * gb), lane);
    dequantize(t, block, 256, out);
  }
}

#ifdef POCKETLLM_KPACKED_VNNI
namespace {

constexpr size_t kTile = 4;  // activation rows per pass over the weights

PLLM_VNNI inline __m512i srl8(__m512i v, int n) { return _mm512_srl_epi16(v, _mm_cvtsi32_si128(n)); }
PLLM_VNNI inline __m512i sll8(__m512i v, int n) { return _mm512_sll_epi16(v, _mm_cvtsi32_si128(n)); }
PLLM_VNNI inline __m512 u8_to_ps(__m128i v) { return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(v)); }
PLLM_VNNI inline __m512 s8_to_ps(const uint8_t* p) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}

// Asks for the eighth `s` of the super-block `kAhead` ahead (groups lie back to back, so past a group's
// end it is the next group's start; a prefetch never faults). Decoding streams every weight from memory
// once, and the hardware prefetcher alone left the kernels well under the bandwidth the Q4_0 layout gets.
constexpr size_t kAhead = 2;
inline void prefetch_eighth(const uint8_t* p, size_t gb, int s) {
  const uint8_t* at = p + kAhead * gb + static_cast<size_t>(s) * gb / 8;
  for (size_t off = 0; off < gb / 8 + 64; off += 64) _mm_prefetch(reinterpret_cast<const char*>(at + off), _MM_HINT_T0);
}

// Sub-block s's 6-bit scales and minimums of the 16 rows from the 12 scale bytes (L[b]: byte b of each row).
PLLM_VNNI inline void scales_k4(const __m128i* L, int s, __m128i* sc, __m128i* m) {
  const __m128i c63 = _mm_set1_epi8(63), c15 = _mm_set1_epi8(15), c3 = _mm_set1_epi8(3);
  if (s < 4) {
    *sc = _mm_and_si128(L[s], c63);
    *m = _mm_and_si128(L[s + 4], c63);
    return;
  }
  const __m128i top_sc = _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(L[s - 4], 6), c3), 4);
  const __m128i top_m = _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(L[s], 6), c3), 4);
  *sc = _mm_or_si128(_mm_and_si128(L[s + 4], c15), top_sc);
  *m = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(L[s + 4], 4), c15), top_m);
}

// 4 activation bytes broadcast per group, products of the groups [g0, g1) summed per row lane.
PLLM_VNNI inline __m512i dot_groups(const __m512i* w, const int32_t* x4, int g0, int g1) {
  __m512i s = _mm512_setzero_si512();
  for (int g = g0; g < g1; ++g) s = _mm512_dpbusd_epi32(s, w[g], _mm512_set1_epi32(x4[g]));
  return s;
}

// Q4_K / Q5_K: per sub-block, (d·sc·d_x)·Σ q·x_q − (dmin·m)·d_x·Σ x_q.
// long: one super-block's scale decoding, quant unpacking and the activation tile, kept in registers together.
template <bool kQ5>
PLLM_VNNI void group_k45(const uint8_t* group, size_t superblocks, const PackedActivations& xq, size_t m0, size_t m1, float* y,
                         size_t ldy) {
  const size_t gb = kQ5 ? kQ5KGroup : kQ4KGroup, k = xq.k, blocks = k / 32;
  const __m512i lo4 = _mm512_set1_epi8(0x0F), bit4 = _mm512_set1_epi8(0x10);
  for (size_t mt = m0; mt < m1; mt += kTile) {
    const size_t rows = std::min(kTile, m1 - mt);
    __m512 acc[kTile];
    for (auto& a : acc) a = _mm512_setzero_ps();
    for (size_t sb = 0; sb < superblocks; ++sb) {
      const uint8_t* p = group + sb * gb;
      const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
      const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32)));
      __m128i L[12];
      for (int b = 0; b < 12; ++b) L[b] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 64 + 16 * b));
      const uint8_t* qs = p + (kQ5 ? 768 : 256);
      for (int s = 0; s < 8; ++s) {
        prefetch_eighth(p, gb, s);
        __m128i scb, mb;
        scales_k4(L, s, &scb, &mb);
        const __m512 scf = _mm512_mul_ps(d, u8_to_ps(scb)), mnf = _mm512_mul_ps(dmin, u8_to_ps(mb));
        __m512i w[8];
        for (int g = 0; g < 8; ++g) {
          w[g] = _mm512_and_si512(srl8(_mm512_loadu_si512(qs + 512 * (s / 2) + 64 * g), 4 * (s & 1)), lo4);
          if (kQ5) {
            const __m512i h = _mm512_loadu_si512(p + 256 + 64 * g);  // bit s of each byte -> bit 4
            w[g] = _mm512_or_si512(w[g], _mm512_and_si512(s <= 4 ? sll8(h, 4 - s) : srl8(h, s - 4), bit4));
          }
        }
        const size_t b = sb * 8 + s;
        for (size_t i = 0; i < rows; ++i) {
          const size_t r = mt + i;
          int32_t x4[8];
          std::memcpy(x4, xq.q.data() + r * k + b * 32, 32);
          const __m512i isum = dot_groups(w, x4, 0, 8);
          const float dx = xq.d[r * blocks + b];
          acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(scf, _mm512_set1_ps(dx)), acc[i]);
          acc[i] = _mm512_fnmadd_ps(mnf, _mm512_set1_ps(dx * static_cast<float>(xq.sum[r * blocks + b])), acc[i]);
        }
      }
    }
    for (size_t i = 0; i < rows; ++i) _mm512_storeu_ps(y + (mt + i - m0) * ldy, acc[i]);
  }
}

// Q6_K: per 16-element half of a sub-block, (d·sc·d_x)·(Σ q·x_q − 32·Σ x_q), q the unsigned 6 bits.
// long: as group_k45, with the 6-bit quants assembled from a nibble plane and a 2-bit plane.
PLLM_VNNI void group_q6k(const uint8_t* group, size_t superblocks, const PackedActivations& xq, size_t m0, size_t m1, float* y,
                         size_t ldy) {
  const size_t k = xq.k, blocks = k / 32;
  const __m512i lo4 = _mm512_set1_epi8(0x0F), bits45 = _mm512_set1_epi8(0x30);
  for (size_t mt = m0; mt < m1; mt += kTile) {
    const size_t rows = std::min(kTile, m1 - mt);
    __m512 acc[kTile];
    for (auto& a : acc) a = _mm512_setzero_ps();
    for (size_t sb = 0; sb < superblocks; ++sb) {
      const uint8_t* p = group + sb * kQ6KGroup;
      const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
      for (int s = 0; s < 8; ++s) {
        prefetch_eighth(p, kQ6KGroup, s);
        const int h = s / 4, t = s % 4;
        const uint8_t* base = p + 288 + 1536 * h;
        const uint8_t* nib = base + (t & 1 ? 512 : 0);
        const __m512 sca = _mm512_mul_ps(d, s8_to_ps(p + 32 + 32 * s)), scb = _mm512_mul_ps(d, s8_to_ps(p + 48 + 32 * s));
        __m512i w[8];
        for (int g = 0; g < 8; ++g) {
          const __m512i lo = _mm512_and_si512(srl8(_mm512_loadu_si512(nib + 64 * g), 4 * (t >> 1)), lo4);
          const __m512i hb = _mm512_loadu_si512(base + 1024 + 64 * g);  // bits 2t, 2t + 1 -> bits 4, 5
          w[g] = _mm512_or_si512(lo, _mm512_and_si512(t <= 2 ? sll8(hb, 4 - 2 * t) : srl8(hb, 2), bits45));
        }
        const size_t b = sb * 8 + s;
        for (size_t i = 0; i < rows; ++i) {
          const size_t r = mt + i;
          int32_t x4[8];
          std::memcpy(x4, xq.q.data() + r * k + b * 32, 32);
          const __m512i sa = _mm512_sub_epi32(dot_groups(w, x4, 0, 4), _mm512_set1_epi32(32 * xq.sum16[2 * (r * blocks + b)]));
          const __m512i sbv = _mm512_sub_epi32(dot_groups(w, x4, 4, 8), _mm512_set1_epi32(32 * xq.sum16[2 * (r * blocks + b) + 1]));
          const __m512 dx = _mm512_set1_ps(xq.d[r * blocks + b]);
          acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sa), _mm512_mul_ps(sca, dx), acc[i]);
          acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sbv), _mm512_mul_ps(scb, dx), acc[i]);
        }
      }
    }
    for (size_t i = 0; i < rows; ++i) _mm512_storeu_ps(y + (mt + i - m0) * ldy, acc[i]);
  }
}

}  // namespace

void product_group(DType t, const uint8_t* group, size_t superblocks, const PackedActivations& x, size_t m0, size_t m1,
                   float* y, size_t ldy) {
  if (t == DType::kQ4_K) group_k45<false>(group, superblocks, x, m0, m1, y, ldy);
  else if (t == DType::kQ5_K) group_k45<true>(group, superblocks, x, m0, m1, y, ldy);
  else group_q6k(group, superblocks, x, m0, m1, y, ldy);
}

#else

void product_group(DType, const uint8_t*, size_t, const PackedActivations&, size_t, size_t, float*, size_t) {}

#endif

}  // namespace pocketllm::kpacked
