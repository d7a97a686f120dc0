#include "kernels_gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include <unistd.h>

#include "pocketllm/common/cpu_features.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define POCKETLLM_GEMM_X86 1
#define PLLM_AVX512 __attribute__((target("avx512f,avx2,fma")))
#define PLLM_AVX2 __attribute__((target("avx2,fma")))
#endif

namespace pocketllm::gemm {
namespace {

constexpr size_t kMr512 = 12, kNr512 = 32;
constexpr size_t kMr256 = 6, kNr256 = 16;

size_t mr_of(Path p) { return p == Path::kAvx512 ? kMr512 : kMr256; }
size_t nr_of(Path p) { return p == Path::kAvx512 ? kNr512 : kNr256; }

size_t round_up(size_t v, size_t to) { return (v + to - 1) / to * to; }

// The k block: one X micro-panel (MR rows × kc floats) stays in L1 while W's panels stream past it from L2,
// so kc is as long as three quarters of this core's L1d allows for the path's MR — 768 for AVX-512 with a
// 48 KiB L1d (K = 768 in one block), 512 with 32 KiB — a multiple of 64 from 128 to 2 048. Only the
// traversal changes with it: the accumulators carry each output's sum from one block to the next, so the
// bytes do not depend on the machine (kernels_gemm.h).
size_t g_k_block_override = 0;

size_t machine_k_block(Path p) {
  long l1 = sysconf(_SC_LEVEL1_DCACHE_SIZE);
  if (l1 <= 0) l1 = 32 << 10;
  const size_t fit = static_cast<size_t>(l1) * 3 / 4 / (mr_of(p) * sizeof(float)) / 64 * 64;
  return std::clamp<size_t>(fit, 128, 2048);
}

// Splits k into blocks of at most k_block_limit(p), of near-equal length (no short tail block).
[[maybe_unused]] size_t k_block(Path p, size_t k) {
  const size_t most = k_block_limit(p);
  if (k <= most) return k;
  const size_t blocks = (k + most - 1) / most;
  return std::min(most, round_up((k + blocks - 1) / blocks, 16));
}

#ifdef POCKETLLM_GEMM_X86

// The output rows of a first k block are asked for when its micro-kernel starts: they are written at its
// end, lie ldc floats apart and are rarely cached, so without this the kernel waits on every row there
// (measured on Zen 3 with the 32 000-row LM head: ~15 % of the GEMM).
inline void prefetch_row(const float* row, size_t floats) {
  for (size_t j = 0; j < floats; j += 16) _mm_prefetch(reinterpret_cast<const char*>(row + j), _MM_HINT_T0);
  _mm_prefetch(reinterpret_cast<const char*>(row + floats - 1), _MM_HINT_T0);
}

// W's panel streams from L2 (the X panel stays in L1): its rows are asked for this many k steps ahead.
constexpr size_t kPrefetchSteps = 8;

// c[i, j] = (add ? c[i, j] : 0) + a[i] · b[j] over kc, for i < mv <= MR, j < nv: one FMA a step in
// ascending k into an accumulator that starts from c, so blocks chained through c give the one FMA chain
// over all of k. a[kk * 12 + i], b[kk * 32 + j]; MR < 12 serves the last rows of a batch (the panel keeps
// its stride of 12), so no zero rows are multiplied.
template <size_t MR>
PLLM_AVX512 void micro_512(size_t kc, const float* a, const float* b, float* c, size_t ldc, size_t mv, size_t nv, bool add) {
  const __mmask16 m0 = nv >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << nv) - 1);
  const __mmask16 m1 = nv >= 32 ? __mmask16(0xFFFF) : nv > 16 ? __mmask16((1u << (nv - 16)) - 1) : __mmask16(0);
  __m512 acc[MR][2];
#pragma GCC unroll 12
  for (size_t i = 0; i < MR; ++i) {
    acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    if (i >= mv) continue;
    if (add) {
      acc[i][0] = _mm512_maskz_loadu_ps(m0, c + i * ldc);
      acc[i][1] = _mm512_maskz_loadu_ps(m1, c + i * ldc + 16);
    } else {
      prefetch_row(c + i * ldc, kNr512);
    }
  }
  for (size_t kk = 0; kk < kc; ++kk) {
    _mm_prefetch(reinterpret_cast<const char*>(b + kPrefetchSteps * kNr512), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b + kPrefetchSteps * kNr512 + 16), _MM_HINT_T0);
    const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 12
    for (size_t i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
      acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
    }
    a += kMr512;
    b += kNr512;
  }
#pragma GCC unroll 12
  for (size_t i = 0; i < MR; ++i) {  // constant indices keep acc in registers
    if (i >= mv) break;
    _mm512_mask_storeu_ps(c + i * ldc, m0, acc[i][0]);
    _mm512_mask_storeu_ps(c + i * ldc + 16, m1, acc[i][1]);
  }
}

// Panels of `width` rows of src [rows, k] (row stride ld), each stored k-major from out + panel *
// panel_stride: out[panel * panel_stride + kk * width + j] = src[(panel * width + j) * ld + kk], zeros past
// the last row (panel_stride k * width for a whole X or W; wider for columns of a wider X). For widths
// that are multiples of 4 (12, 16, 32; 6 has pack_panels6_avx2), with 8 × 8 register transposes for each
// group of 8 rows and 4 × 4 ones for a last group of 4.
PLLM_AVX2 void pack_panels_avx2(const float* src, size_t rows, size_t k, size_t ld, size_t width, float* out,
                                size_t panel_stride) {
  alignas(32) static const float kZeros[8] = {};
  const size_t panels = (rows + width - 1) / width;
  for (size_t pnl = 0; pnl < panels; ++pnl) {
    float* dst = out + pnl * panel_stride;
    const size_t r0 = pnl * width;
    if (width % 8 == 4) {
      const size_t g = width - 4;
      const float* row[4];
      size_t step[4];
      for (size_t j = 0; j < 4; ++j) {
        const bool valid = r0 + g + j < rows;
        row[j] = valid ? src + (r0 + g + j) * ld : kZeros;
        step[j] = valid ? 4 : 0;
      }
      size_t kk = 0;
      for (; kk + 4 <= k; kk += 4) {
        __m128 a = _mm_loadu_ps(row[0]), b = _mm_loadu_ps(row[1]), c = _mm_loadu_ps(row[2]), d = _mm_loadu_ps(row[3]);
        for (size_t j = 0; j < 4; ++j) row[j] += step[j];
        _MM_TRANSPOSE4_PS(a, b, c, d);
        float* o = dst + kk * width + g;
        _mm_storeu_ps(o, a);
        _mm_storeu_ps(o + width, b);
        _mm_storeu_ps(o + 2 * width, c);
        _mm_storeu_ps(o + 3 * width, d);
      }
      for (; kk < k; ++kk)
        for (size_t j = 0; j < 4; ++j) dst[kk * width + g + j] = r0 + g + j < rows ? src[(r0 + g + j) * ld + kk] : 0.0f;
    }
    for (size_t g = 0; g + 8 <= width; g += 8) {
      const float* row[8];
      size_t step[8];
      for (size_t j = 0; j < 8; ++j) {
        const bool valid = r0 + g + j < rows;
        row[j] = valid ? src + (r0 + g + j) * ld : kZeros;
        step[j] = valid ? 8 : 0;
      }
      size_t kk = 0;
      for (; kk + 8 <= k; kk += 8) {
        const __m256 r0v = _mm256_loadu_ps(row[0]), r1v = _mm256_loadu_ps(row[1]), r2v = _mm256_loadu_ps(row[2]),
                     r3v = _mm256_loadu_ps(row[3]), r4v = _mm256_loadu_ps(row[4]), r5v = _mm256_loadu_ps(row[5]),
                     r6v = _mm256_loadu_ps(row[6]), r7v = _mm256_loadu_ps(row[7]);
        for (size_t j = 0; j < 8; ++j) row[j] += step[j];
        const __m256 t0 = _mm256_unpacklo_ps(r0v, r1v), t1 = _mm256_unpackhi_ps(r0v, r1v);
        const __m256 t2 = _mm256_unpacklo_ps(r2v, r3v), t3 = _mm256_unpackhi_ps(r2v, r3v);
        const __m256 t4 = _mm256_unpacklo_ps(r4v, r5v), t5 = _mm256_unpackhi_ps(r4v, r5v);
        const __m256 t6 = _mm256_unpacklo_ps(r6v, r7v), t7 = _mm256_unpackhi_ps(r6v, r7v);
        const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
        const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
        const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
        const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
        float* d = dst + kk * width + g;
        _mm256_storeu_ps(d + 0 * width, _mm256_permute2f128_ps(u0, u4, 0x20));
        _mm256_storeu_ps(d + 1 * width, _mm256_permute2f128_ps(u1, u5, 0x20));
        _mm256_storeu_ps(d + 2 * width, _mm256_permute2f128_ps(u2, u6, 0x20));
        _mm256_storeu_ps(d + 3 * width, _mm256_permute2f128_ps(u3, u7, 0x20));
        _mm256_storeu_ps(d + 4 * width, _mm256_permute2f128_ps(u0, u4, 0x31));
        _mm256_storeu_ps(d + 5 * width, _mm256_permute2f128_ps(u1, u5, 0x31));
        _mm256_storeu_ps(d + 6 * width, _mm256_permute2f128_ps(u2, u6, 0x31));
        _mm256_storeu_ps(d + 7 * width, _mm256_permute2f128_ps(u3, u7, 0x31));
      }
      for (; kk < k; ++kk)
        for (size_t j = 0; j < 8; ++j) dst[kk * width + g + j] = r0 + g + j < rows ? src[(r0 + g + j) * ld + kk] : 0.0f;
    }
  }
}

// pack_panels for the AVX2 path's width of 6: rows 0–3 of a panel by 4 × 4 register transposes, rows 4–5
// interleaved pairwise, four columns of k at a time (the scalar loop was ~6 % of a stories260K forward).
PLLM_AVX2 void pack_panels6_avx2(const float* src, size_t rows, size_t k, size_t ld, float* out, size_t panel_stride) {
  alignas(16) static const float kZeros[4] = {};
  const size_t panels = (rows + 5) / 6;
  for (size_t pnl = 0; pnl < panels; ++pnl) {
    float* dst = out + pnl * panel_stride;
    const size_t r0 = pnl * 6;
    const float* row[6];
    size_t step[6];
    for (size_t j = 0; j < 6; ++j) {
      const bool valid = r0 + j < rows;
      row[j] = valid ? src + (r0 + j) * ld : kZeros;
      step[j] = valid ? 4 : 0;
    }
    size_t kk = 0;
    for (; kk + 4 <= k; kk += 4) {
      __m128 a = _mm_loadu_ps(row[0]), b = _mm_loadu_ps(row[1]), c = _mm_loadu_ps(row[2]), d = _mm_loadu_ps(row[3]);
      const __m128 e = _mm_loadu_ps(row[4]), f = _mm_loadu_ps(row[5]);
      for (size_t j = 0; j < 6; ++j) row[j] += step[j];
      _MM_TRANSPOSE4_PS(a, b, c, d);
      const __m128 lo = _mm_unpacklo_ps(e, f), hi = _mm_unpackhi_ps(e, f);
      float* o = dst + kk * 6;
      _mm_storeu_ps(o, a);
      _mm_storel_pi(reinterpret_cast<__m64*>(o + 4), lo);
      _mm_storeu_ps(o + 6, b);
      _mm_storeh_pi(reinterpret_cast<__m64*>(o + 10), lo);
      _mm_storeu_ps(o + 12, c);
      _mm_storel_pi(reinterpret_cast<__m64*>(o + 16), hi);
      _mm_storeu_ps(o + 18, d);
      _mm_storeh_pi(reinterpret_cast<__m64*>(o + 22), hi);
    }
    for (; kk < k; ++kk)
      for (size_t j = 0; j < 6; ++j) dst[kk * 6 + j] = r0 + j < rows ? src[(r0 + j) * ld + kk] : 0.0f;
  }
}

PLLM_AVX2 __m256i lane_mask_256(size_t valid) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(std::min<size_t>(valid, 8))), idx);
}

// The AVX2 block: 6 rows × 16 columns, the same sums as micro_512 (MR < 6 for the last rows, as there).
// A whole tile uses plain loads and stores: masked ones are microcoded on AMD cores and cost ~10 % of a
// stories260K GEMM with k = 64 on Zen 3.
template <size_t MR>
PLLM_AVX2 void micro_256(size_t kc, const float* a, const float* b, float* c, size_t ldc, size_t mv, size_t nv, bool add) {
  const bool whole = nv == kNr256;
  const __m256i m0 = lane_mask_256(nv), m1 = lane_mask_256(nv > 8 ? nv - 8 : 0);
  __m256 acc[MR][2];
#pragma GCC unroll 6
  for (size_t i = 0; i < MR; ++i) {
    acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    if (i >= mv) continue;
    float* row = c + i * ldc;
    if (add && whole) {
      acc[i][0] = _mm256_loadu_ps(row);
      acc[i][1] = _mm256_loadu_ps(row + 8);
    } else if (add) {
      acc[i][0] = _mm256_maskload_ps(row, m0);
      acc[i][1] = _mm256_maskload_ps(row + 8, m1);
    } else {
      prefetch_row(row, kNr256);
    }
  }
#pragma GCC unroll 4
  for (size_t kk = 0; kk < kc; ++kk) {
    _mm_prefetch(reinterpret_cast<const char*>(b + kPrefetchSteps * kNr256), _MM_HINT_T0);
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
    for (size_t i = 0; i < MR; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + i);
      acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
    }
    a += kMr256;
    b += kNr256;
  }
#pragma GCC unroll 6
  for (size_t i = 0; i < MR; ++i) {  // constant indices keep acc in registers
    if (i >= mv) break;
    float* row = c + i * ldc;
    if (whole) {
      _mm256_storeu_ps(row, acc[i][0]);
      _mm256_storeu_ps(row + 8, acc[i][1]);
    } else {
      _mm256_maskstore_ps(row, m0, acc[i][0]);
      _mm256_maskstore_ps(row + 8, m1, acc[i][1]);
    }
  }
}

#endif

Path widest_supported() {
  const CpuFeatures& f = cpu_features();
  if (f.avx512f && f.avx2 && f.fma) return Path::kAvx512;
  if (f.avx2 && f.fma) return Path::kAvx2;
  return Path::kEigen;
}

Path choose() {
  const Path widest = widest_supported();
  const char* env = std::getenv("POCKETLLM_GEMM");
  if (env == nullptr) return widest;
  Path want = widest;
  if (std::strcmp(env, "eigen") == 0) want = Path::kEigen;
  else if (std::strcmp(env, "avx2") == 0) want = Path::kAvx2;
  else if (std::strcmp(env, "avx512") == 0) want = Path::kAvx512;
  return path_supported(want) ? want : widest;
}

}  // namespace

bool path_supported(Path p) {
  switch (p) {
    case Path::kEigen: return true;
#ifdef POCKETLLM_GEMM_X86
    case Path::kAvx2: return cpu_features().avx2 && cpu_features().fma;
    case Path::kAvx512: return cpu_features().avx512f && cpu_features().avx2 && cpu_features().fma;
#else
    default: return false;
#endif
  }
  return false;
}

Path chosen_path() {
  static const Path p = choose();
  return p;
}

const char* path_name(Path p) {
  switch (p) {
    case Path::kAvx512: return "packed AVX-512 12x32";
    case Path::kAvx2: return "packed AVX2+FMA 6x16";
    case Path::kEigen: break;
  }
  return "Eigen";
}

size_t row_block(Path p) { return mr_of(p); }

size_t l2_cache_bytes() {
  static const size_t bytes = [] {
    const long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
    return l2 > 0 ? static_cast<size_t>(l2) : size_t{0};
  }();
  return bytes;
}

size_t k_block_limit(Path p) {
  static const size_t k512 = machine_k_block(Path::kAvx512), k256 = machine_k_block(Path::kAvx2);  // sysconf once
  if (g_k_block_override) return g_k_block_override;
  return p == Path::kAvx512 ? k512 : k256;
}

void set_k_block_for_testing(size_t kc) { g_k_block_override = kc == 0 ? 0 : round_up(kc, 16); }

size_t packed_x_floats(Path p, size_t m, size_t k) { return p == Path::kEigen ? 0 : round_up(m, mr_of(p)) * k; }

size_t tile_scratch_floats(Path p, size_t rows, size_t k) { return p == Path::kEigen ? 0 : round_up(rows, nr_of(p)) * k; }

void pack_x(Path p, const float* x, size_t m, size_t k, float* packed) { pack_x(p, x, k, m, k, packed); }

void pack_x(Path p, const float* x, size_t ldx, size_t m, size_t k, float* packed) {
  pack_x_columns(p, x, ldx, m, k, k, 0, packed);
}

void pack_x_columns(Path p, const float* x, size_t ldx, size_t m, size_t k, size_t cols, size_t c0, float* packed) {
#ifdef POCKETLLM_GEMM_X86
  if (p == Path::kAvx512) pack_panels_avx2(x, m, k, ldx, kMr512, packed + c0 * kMr512, cols * kMr512);
  else if (p == Path::kAvx2) pack_panels6_avx2(x, m, k, ldx, packed + c0 * 6, cols * 6);
#else
  (void)p, (void)x, (void)ldx, (void)m, (void)k, (void)cols, (void)c0, (void)packed;
#endif
}

#ifdef POCKETLLM_GEMM_X86
namespace {

// Y = X · Wᵀ from both packed: X's row panels (pack_x) and W's `rows` rows as column panels of nr_of(p)
// in bpanels. Each X panel runs its k blocks in turn; in each, its block (in L1) meets every W panel
// (streaming from L2). Each output is one FMA chain over k ascending, carried from block to block through
// y, whose MR rows × tile stay in L1 between blocks (with the k blocks outermost they went out to L2 or
// memory: there the down projection, K = 2 048, took 1.07–1.17× the time in the shoot-out's harness on
// the Xeon of session 49).
void multiply_packed(Path p, const float* packed, size_t m, size_t k, const float* bpanels, size_t rows, float* y, size_t ldy) {
  const size_t mr = mr_of(p), nr = nr_of(p);
  const size_t mblocks = (m + mr - 1) / mr, panels = (rows + nr - 1) / nr, kb = k_block(p, k);
  for (size_t ib = 0; ib < mblocks; ++ib) {
    const size_t mv = std::min(mr, m - ib * mr);
    float* crow = y + ib * mr * ldy;
    for (size_t k0 = 0; k0 < k; k0 += kb) {
      const size_t kc = std::min(kb, k - k0);
      const bool add = k0 > 0;
      const float* ap = packed + (ib * k + k0) * mr;
      for (size_t jb = 0; jb < panels; ++jb) {
        const float* bp = bpanels + (jb * k + k0) * nr;
        const size_t nv = std::min(nr, rows - jb * nr);
        float* c = crow + jb * nr;
        if (p == Path::kAvx512) {
          if (mv > 8) micro_512<12>(kc, ap, bp, c, ldy, mv, nv, add);
          else if (mv > 4) micro_512<8>(kc, ap, bp, c, ldy, mv, nv, add);
          else micro_512<4>(kc, ap, bp, c, ldy, mv, nv, add);
        } else {
          if (mv > 4) micro_256<6>(kc, ap, bp, c, ldy, mv, nv, add);
          else if (mv > 2) micro_256<4>(kc, ap, bp, c, ldy, mv, nv, add);
          else micro_256<2>(kc, ap, bp, c, ldy, mv, nv, add);
        }
      }
    }
  }
}

}  // namespace
#endif

void multiply_tile(Path p, const float* packed, size_t m, size_t k, const float* w, size_t rows, float* scratch, float* y,
                   size_t ldy) {
  multiply_tile(p, packed, m, k, w, k, rows, scratch, y, ldy);
}

void multiply_tile(Path p, const float* packed, size_t m, size_t k, const float* w, size_t ldw, size_t rows, float* scratch,
                   float* y, size_t ldy) {
  if (m == 0 || rows == 0) return;
  pack_w(p, w, ldw, rows, k, scratch);
  multiply_panels(p, packed, m, k, scratch, rows, y, ldy);
}

void pack_w(Path p, const float* w, size_t ldw, size_t rows, size_t k, float* panels) {
#ifdef POCKETLLM_GEMM_X86
  if (p != Path::kEigen && rows > 0) pack_panels_avx2(w, rows, k, ldw, nr_of(p), panels, k * nr_of(p));
#else
  (void)p, (void)w, (void)ldw, (void)rows, (void)k, (void)panels;
#endif
}

void multiply_panels(Path p, const float* packed, size_t m, size_t k, const float* panels, size_t rows, float* y,
                     size_t ldy) {
#ifdef POCKETLLM_GEMM_X86
  if (p != Path::kEigen && m > 0 && rows > 0) multiply_packed(p, packed, m, k, panels, rows, y, ldy);
#else
  (void)p, (void)packed, (void)m, (void)k, (void)panels, (void)rows, (void)y, (void)ldy;
#endif
}

#ifdef POCKETLLM_GEMM_X86
namespace {

// W [k, cols] (row stride ldw) as column panels of NR: row kk of panel jb is W[kk][jb NR ..], zeros past
// the last column. W is read row by row, in fixed-size copies of NR floats (a memmove call per panel row
// cost a fifth of GPT-2's forward).
template <size_t NR>
void pack_in_out_panels(const float* w, size_t ldw, size_t k, size_t cols, float* out) {
  const size_t whole = cols / NR, nv = cols % NR;
  for (size_t kk = 0; kk < k; ++kk) {
    const float* src = w + kk * ldw;
    for (size_t jb = 0; jb < whole; ++jb) {
      float* d = out + (jb * k + kk) * NR;
      for (size_t j = 0; j < NR; ++j) d[j] = src[jb * NR + j];
    }
    if (nv > 0) {
      float* d = out + (whole * k + kk) * NR;
      for (size_t j = 0; j < NR; ++j) d[j] = j < nv ? src[whole * NR + j] : 0.0f;
    }
  }
}

}  // namespace
#endif

void multiply_tile_in_out(Path p, const float* packed, size_t m, size_t k, const float* w, size_t ldw, size_t cols,
                          float* scratch, float* y, size_t ldy) {
#ifdef POCKETLLM_GEMM_X86
  if (p == Path::kEigen || m == 0 || cols == 0) return;
  if (nr_of(p) == 32) pack_in_out_panels<32>(w, ldw, k, cols, scratch);
  else pack_in_out_panels<16>(w, ldw, k, cols, scratch);
  multiply_packed(p, packed, m, k, scratch, cols, y, ldy);
#else
  (void)p, (void)packed, (void)m, (void)k, (void)w, (void)ldw, (void)cols, (void)scratch, (void)y, (void)ldy;
#endif
}

}  // namespace pocketllm::gemm
