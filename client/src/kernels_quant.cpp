#include "kernels_quant.h"

#include <algorithm>
#include <cstring>
#include <vector>

// x86-64: AVX2/FMA/F16C versions compiled with per-function target attributes and chosen at run time;
// the portable versions (vectorised by the compiler for NEON, SSE) serve every other CPU.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define POCKETLLM_QUANT_X86 1
#define PLLM_AVX2 __attribute__((target("avx2,fma,f16c")))
#endif

#include "kernels.h"
#include "pocketllm/common/cpu_features.h"
#include "pocketllm/common/quant.h"

namespace pocketllm {
namespace {

inline float half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

#ifdef POCKETLLM_QUANT_X86
PLLM_AVX2 inline float half_x86(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

PLLM_AVX2 inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// 8 int8 at p -> 8 floats
PLLM_AVX2 inline __m256 widen8(const int8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}

PLLM_AVX2 float dot_q8_0_x86(const uint8_t* row, const float* x, size_t blocks) {
  __m256 acc = _mm256_setzero_ps();
  for (size_t b = 0; b < blocks; ++b, row += 34, x += 32) {
    const auto* q = reinterpret_cast<const int8_t*>(row + 2);
    __m256 s = _mm256_mul_ps(widen8(q), _mm256_loadu_ps(x));
    s = _mm256_fmadd_ps(widen8(q + 8), _mm256_loadu_ps(x + 8), s);
    s = _mm256_fmadd_ps(widen8(q + 16), _mm256_loadu_ps(x + 16), s);
    s = _mm256_fmadd_ps(widen8(q + 24), _mm256_loadu_ps(x + 24), s);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(half_x86(row)), s, acc);
  }
  return hsum(acc);
}

PLLM_AVX2 inline __m256 widen8x(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)); }

PLLM_AVX2 float dot_q4_0_x86(const uint8_t* row, const float* x, size_t blocks) {
  __m256 acc = _mm256_setzero_ps();
  const __m128i mask = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
  for (size_t b = 0; b < blocks; ++b, row += 18, x += 32) {
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2));
    const __m128i lo = _mm_sub_epi8(_mm_and_si128(packed, mask), eight);                     // elements 0..15
    const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(packed, 4), mask), eight);  // elements 16..31
    __m256 s = _mm256_mul_ps(widen8x(lo), _mm256_loadu_ps(x));
    s = _mm256_fmadd_ps(widen8x(_mm_srli_si128(lo, 8)), _mm256_loadu_ps(x + 8), s);
    s = _mm256_fmadd_ps(widen8x(hi), _mm256_loadu_ps(x + 16), s);
    s = _mm256_fmadd_ps(widen8x(_mm_srli_si128(hi, 8)), _mm256_loadu_ps(x + 24), s);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(half_x86(row)), s, acc);
  }
  return hsum(acc);
}
#endif

// Portable: 8 independent lanes per block, which compilers turn into vector code (NEON on arm64).
float dot_q8_0(const uint8_t* row, const float* x, size_t blocks) {
  float acc[8] = {};
  for (size_t b = 0; b < blocks; ++b, row += 34, x += 32) {
    const auto* q = reinterpret_cast<const int8_t*>(row + 2);
    float s[8] = {};
    for (int j = 0; j < 32; j += 8)
      for (int l = 0; l < 8; ++l) s[l] += static_cast<float>(q[j + l]) * x[j + l];
    const float d = half(row);
    for (int l = 0; l < 8; ++l) acc[l] += d * s[l];
  }
  float t = 0;
  for (float a : acc) t += a;
  return t;
}

float dot_q4_0(const uint8_t* row, const float* x, size_t blocks) {
  float acc[8] = {};
  for (size_t b = 0; b < blocks; ++b, row += 18, x += 32) {
    const uint8_t* q = row + 2;
    float s[8] = {};
    for (int j = 0; j < 16; j += 8)
      for (int l = 0; l < 8; ++l)
        s[l] += static_cast<float>((q[j + l] & 15) - 8) * x[j + l] + static_cast<float>((q[j + l] >> 4) - 8) * x[16 + j + l];
    const float d = half(row);
    for (int l = 0; l < 8; ++l) acc[l] += d * s[l];
  }
  float t = 0;
  for (float a : acc) t += a;
  return t;
}

#ifdef POCKETLLM_QUANT_X86
PLLM_AVX2 float dot_f16(const uint8_t* row, const float* x, size_t k) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= k; i += 16) {
    a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * i))), _mm256_loadu_ps(x + i), a0);
    a1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * i + 16))), _mm256_loadu_ps(x + i + 8), a1);
  }
  float s = hsum(_mm256_add_ps(a0, a1));
  for (; i < k; ++i) s += half_x86(row + 2 * i) * x[i];
  return s;
}

PLLM_AVX2 float dot_bf16(const uint8_t* row, const float* x, size_t k) {
  __m256 a0 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 8 <= k; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * i));
    a0 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)), _mm256_loadu_ps(x + i), a0);
  }
  float s = hsum(a0);
  for (; i < k; ++i) {
    uint16_t b;
    std::memcpy(&b, row + 2 * i, 2);
    s += bf16_to_f32(b) * x[i];
  }
  return s;
}
#endif

// Other types (Q4_K, Q6_K; F16/BF16 without F16C): the row converted into thread scratch, then a float dot product.
float dot_dequantized(DType t, const uint8_t* row, const float* x, size_t k) {
  float* tmp = thread_scratch(k, 0);
  convert_to_f32(t, row, k, tmp);
  float acc[8] = {};
  size_t i = 0;
  for (; i + 8 <= k; i += 8)
    for (int l = 0; l < 8; ++l) acc[l] += tmp[i + l] * x[i + l];
  float s = 0;
  for (; i < k; ++i) s += tmp[i] * x[i];
  for (float a : acc) s += a;
  return s;
}

}  // namespace

bool direct_kernels_x86() {
#ifdef POCKETLLM_QUANT_X86
  static const bool ok = cpu_features().avx2 && cpu_features().fma && cpu_features().f16c;
  return ok;
#else
  return false;
#endif
}

float quantized_row_dot(DType t, const void* row, const float* x, size_t k) {
  const auto* r = static_cast<const uint8_t*>(row);
#ifdef POCKETLLM_QUANT_X86
  if (direct_kernels_x86()) {
    switch (t) {
      case DType::kQ8_0: return dot_q8_0_x86(r, x, k / 32);
      case DType::kQ4_0: return dot_q4_0_x86(r, x, k / 32);
      case DType::kF16: return dot_f16(r, x, k);
      case DType::kBF16: return dot_bf16(r, x, k);
      default: return dot_dequantized(t, r, x, k);
    }
  }
#endif
  switch (t) {
    case DType::kQ8_0: return dot_q8_0(r, x, k / 32);
    case DType::kQ4_0: return dot_q4_0(r, x, k / 32);
    default: return dot_dequantized(t, r, x, k);
  }
}

void linear_quantized(ThreadPool* pool, const float* x, size_t m, size_t k, const Weight& w, float* y) {
  const size_t n = w.rows();
  const uint64_t row_bytes = dtype_bytes(w.dtype, k);
  const auto* data = static_cast<const uint8_t*>(w.data);
  if (n * k < (size_t{1} << 15)) pool = nullptr;
  const size_t chunk = 64;
  parallel_for(pool, (n + chunk - 1) / chunk, [&](size_t c) {
    const size_t n0 = c * chunk, n1 = std::min(n, n0 + chunk);
    for (size_t j = n0; j < n1; ++j) {
      const uint8_t* row = data + j * row_bytes;
      for (size_t r = 0; r < m; ++r) y[r * n + j] = quantized_row_dot(w.dtype, row, x + r * k, k);
    }
  });
}

}  // namespace pocketllm

#include "kernels_quant_packed.h"
#include "pocketllm/client/kernels_info.h"

namespace pocketllm {

std::string kernel_paths() {
  std::string s = "quantized batches: ";
  s += packed_quant_kernels_available() ? "packed int8 (AVX-512 VNNI)" : "dequantized tiles + GEMM";
  s += "; decode: ";
  s += direct_kernels_x86() ? "AVX2+FMA+F16C" : "portable";
  s += "; float GEMM: Eigen (";
#if defined(__AVX512F__)
  s += "AVX-512";
#elif defined(__AVX2__)
  s += "AVX2";
#elif defined(__aarch64__)
  s += "NEON";
#else
  s += "SSE";
#endif
  s += ", build ISA)";
  return s;
}

}  // namespace pocketllm
