// AVX2 and AVX-512 versions of the Rademacher stream (perturbation_paths.h), compiled into every x86-64
// build with target attributes so a portable (x86-64-v2) library carries them. Philox4x32-10 runs over 8
// or 16 block counters per vector: the 32 x 32 -> 64-bit products of the even and odd lanes are taken
// separately (vpmuludq) and their halves blended back, which is exactly the scalar arithmetic. A block's
// four output words then give its 128 signs: bit t of word w is element 32 w + t. The Gaussian clones in
// perturbation.cpp take the same Philox (philox_batch_avx2 / _avx512) and vectorise Box–Muller themselves.
#include "perturbation_paths.h"

#include "pocketllm/common/cpu_features.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define PLLM_PERTURB_X86 1
#define PLLM_TARGET_AVX2 __attribute__((target("avx2")))
#define PLLM_TARGET_AVX512 __attribute__((target("avx512f")))
#endif

namespace pocketllm::perturb_paths {

#ifdef PLLM_PERTURB_X86
namespace {

constexpr size_t kBlockFloats = 128;

// The counters of blocks first, first + 1, ... : word 0 the low 32 bits, word 1 the high 32 bits of the
// block index, words 2 and 3 the tensor tag (docs/perturbation.md §3).
inline void block_counters(uint64_t first, size_t lanes, uint32_t* lo, uint32_t* hi) {
  for (size_t i = 0; i < lanes; ++i) {
    const uint64_t b = first + i;
    lo[i] = static_cast<uint32_t>(b);
    hi[i] = static_cast<uint32_t>(b >> 32);
  }
}

// ---- AVX2: 8 blocks per vector, two vectors per batch --------------------------------------------------
PLLM_TARGET_AVX2 inline void mulhilo8(__m256i a, __m256i m, __m256i* hi, __m256i* lo) {
  const __m256i even = _mm256_mul_epu32(a, m);
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
  *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

// Philox4x32-10 of 16 consecutive blocks: out[w][i] is word w of block first + i.
PLLM_TARGET_AVX2 void philox16_avx2(PhiloxKey key, uint64_t tag, uint64_t first, uint32_t out[4][16]) {
  alignas(32) uint32_t lo[16], hi[16];
  block_counters(first, 16, lo, hi);
  __m256i c0[2], c1[2], c2[2], c3[2];
  for (int h = 0; h < 2; ++h) {
    c0[h] = _mm256_load_si256(reinterpret_cast<const __m256i*>(lo + 8 * h));
    c1[h] = _mm256_load_si256(reinterpret_cast<const __m256i*>(hi + 8 * h));
    c2[h] = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(tag)));
    c3[h] = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(tag >> 32)));
  }
  const __m256i m0 = _mm256_set1_epi32(static_cast<int>(kPhiloxM0)), m1 = _mm256_set1_epi32(static_cast<int>(kPhiloxM1));
  uint32_t k0 = key[0], k1 = key[1];
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += kPhiloxW0;
      k1 += kPhiloxW1;
    }
    const __m256i kv0 = _mm256_set1_epi32(static_cast<int>(k0)), kv1 = _mm256_set1_epi32(static_cast<int>(k1));
    for (int h = 0; h < 2; ++h) {
      __m256i hi0, lo0, hi1, lo1;
      mulhilo8(c0[h], m0, &hi0, &lo0);
      mulhilo8(c2[h], m1, &hi1, &lo1);
      c0[h] = _mm256_xor_si256(_mm256_xor_si256(hi1, c1[h]), kv0);
      c2[h] = _mm256_xor_si256(_mm256_xor_si256(hi0, c3[h]), kv1);
      c1[h] = lo1;
      c3[h] = lo0;
    }
  }
  for (int h = 0; h < 2; ++h) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[0] + 8 * h), c0[h]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[1] + 8 * h), c1[h]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[2] + 8 * h), c2[h]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[3] + 8 * h), c3[h]);
  }
}

// 32 elements from one word: lane t of group g gets bit 8 g + t moved to the sign position.
PLLM_TARGET_AVX2 inline void apply_word_avx2(uint32_t word, __m256i c, const float* src, float* dst) {
  const __m256i sign = _mm256_set1_epi32(static_cast<int>(0x80000000u));
  const __m256i w = _mm256_set1_epi32(static_cast<int>(word));
  for (int g = 0; g < 4; ++g) {
    const int b = 31 - 8 * g;  // shifting left by b - t puts bit 8 g + t at bit 31
    const __m256i shift = _mm256_setr_epi32(b, b - 1, b - 2, b - 3, b - 4, b - 5, b - 6, b - 7);
    const __m256i z = _mm256_xor_si256(c, _mm256_and_si256(_mm256_sllv_epi32(w, shift), sign));
    __m256 v = _mm256_castsi256_ps(z);
    if (src != nullptr) v = _mm256_add_ps(_mm256_loadu_ps(src + 8 * g), v);
    _mm256_storeu_ps(dst + 8 * g, v);
  }
}

PLLM_TARGET_AVX2 void rademacher_blocks_avx2(PhiloxKey key, uint64_t tag, uint64_t first_block, uint64_t blocks,
                                             uint32_t c_bits, const float* src, float* dst) {
  alignas(32) uint32_t words[4][16];
  const __m256i c = _mm256_set1_epi32(static_cast<int>(c_bits));
  for (uint64_t b0 = 0; b0 < blocks; b0 += 16) {
    philox16_avx2(key, tag, first_block + b0, words);
    const uint64_t nb = blocks - b0 < 16 ? blocks - b0 : 16;
    for (uint64_t i = 0; i < nb; ++i) {
      const size_t base = static_cast<size_t>((b0 + i) * kBlockFloats);
      for (int w = 0; w < 4; ++w)
        apply_word_avx2(words[w][i], c, src != nullptr ? src + base + 32 * w : nullptr, dst + base + 32 * w);
    }
  }
}

// ---- AVX-512: 16 blocks per vector ------------------------------------------------------------------------
PLLM_TARGET_AVX512 inline void mulhilo16(__m512i a, __m512i m, __m512i* hi, __m512i* lo) {
  const __m512i even = _mm512_mul_epu32(a, m);
  const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
  *lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
  *hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
}

PLLM_TARGET_AVX512 void philox16_avx512(PhiloxKey key, uint64_t tag, uint64_t first, uint32_t out[4][16]) {
  alignas(64) uint32_t lo[16], hi[16];
  block_counters(first, 16, lo, hi);
  __m512i c0 = _mm512_load_si512(lo), c1 = _mm512_load_si512(hi);
  __m512i c2 = _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(tag)));
  __m512i c3 = _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(tag >> 32)));
  const __m512i m0 = _mm512_set1_epi32(static_cast<int>(kPhiloxM0)), m1 = _mm512_set1_epi32(static_cast<int>(kPhiloxM1));
  uint32_t k0 = key[0], k1 = key[1];
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += kPhiloxW0;
      k1 += kPhiloxW1;
    }
    __m512i hi0, lo0, hi1, lo1;
    mulhilo16(c0, m0, &hi0, &lo0);
    mulhilo16(c2, m1, &hi1, &lo1);
    // 0x96: a ^ b ^ c
    c0 = _mm512_ternarylogic_epi32(hi1, c1, _mm512_set1_epi32(static_cast<int>(k0)), 0x96);
    c2 = _mm512_ternarylogic_epi32(hi0, c3, _mm512_set1_epi32(static_cast<int>(k1)), 0x96);
    c1 = lo1;
    c3 = lo0;
  }
  _mm512_storeu_si512(out[0], c0);
  _mm512_storeu_si512(out[1], c1);
  _mm512_storeu_si512(out[2], c2);
  _mm512_storeu_si512(out[3], c3);
}

PLLM_TARGET_AVX512 void rademacher_blocks_avx512(PhiloxKey key, uint64_t tag, uint64_t first_block, uint64_t blocks,
                                                 uint32_t c_bits, const float* src, float* dst) {
  alignas(64) uint32_t words[4][16];
  const __m512i c = _mm512_set1_epi32(static_cast<int>(c_bits));
  const __m512i sign = _mm512_set1_epi32(static_cast<int>(0x80000000u));
  for (uint64_t b0 = 0; b0 < blocks; b0 += 16) {
    philox16_avx512(key, tag, first_block + b0, words);
    const uint64_t nb = blocks - b0 < 16 ? blocks - b0 : 16;
    for (uint64_t i = 0; i < nb; ++i) {
      const size_t base = static_cast<size_t>((b0 + i) * kBlockFloats);
      for (int w = 0; w < 4; ++w) {
        const uint32_t word = words[w][i];
        for (int half = 0; half < 2; ++half) {
          const size_t at = base + 32 * w + 16 * half;
          const __mmask16 neg = static_cast<__mmask16>(word >> (16 * half));  // bit t: element t is -1
          __m512 v = _mm512_castsi512_ps(_mm512_mask_xor_epi32(c, neg, c, sign));
          if (src != nullptr) v = _mm512_add_ps(_mm512_loadu_ps(src + at), v);
          _mm512_storeu_ps(dst + at, v);
        }
      }
    }
  }
}

}  // namespace

RademacherBlocksFn rademacher_avx2() { return cpu_features().avx2 ? rademacher_blocks_avx2 : nullptr; }
RademacherBlocksFn rademacher_avx512() { return cpu_features().avx512f ? rademacher_blocks_avx512 : nullptr; }
Philox16Fn philox_batch_avx2() { return cpu_features().avx2 ? philox16_avx2 : nullptr; }
Philox16Fn philox_batch_avx512() { return cpu_features().avx512f ? philox16_avx512 : nullptr; }

#else  // not x86-64 with GCC/Clang: the generic path only

RademacherBlocksFn rademacher_avx2() { return nullptr; }
RademacherBlocksFn rademacher_avx512() { return nullptr; }
Philox16Fn philox_batch_avx2() { return nullptr; }
Philox16Fn philox_batch_avx512() { return nullptr; }

#endif

}  // namespace pocketllm::perturb_paths
