#include "kernels_quant.h"

#include "pocketllm/common/perturbation.h"

#include <algorithm>
#include <cstring>
#include <vector>

// x86-64: AVX2/FMA/F16C versions compiled with per-function target attributes and chosen at run time;
// the portable versions (vectorised by the compiler for NEON, SSE) serve every other CPU.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include "simd_avx2.h"
#define POCKETLLM_QUANT_X86 1
#define PLLM_AVX2 __attribute__((target("avx2,fma,f16c")))
#endif

// arm64: int8 dot products (sdot, Armv8.2 dotprod) compiled with a target attribute and chosen at run time
// from the kernel's hwcaps; Armv8.0 cores take the portable float path.
#if defined(__aarch64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__))
#include <arm_neon.h>
#define POCKETLLM_QUANT_SDOT 1
#define PLLM_DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))
#endif

#include <cmath>

#include "kernels.h"
#include "kernels_kquant.h"
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

PLLM_AVX2 inline float hsum(__m256 v) { return simd::hsum8(v); }

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

#ifdef POCKETLLM_QUANT_SDOT
PLLM_DOTPROD float dot_q8_0_sdot(const uint8_t* row, const int8_t* xq, const float* dx, size_t blocks) {
  float sum = 0.0f;
  for (size_t b = 0; b < blocks; ++b, row += 34, xq += 32) {
    const auto* q = reinterpret_cast<const int8_t*>(row + 2);
    int32x4_t s = vdotq_s32(vdupq_n_s32(0), vld1q_s8(q), vld1q_s8(xq));
    s = vdotq_s32(s, vld1q_s8(q + 16), vld1q_s8(xq + 16));
    sum += static_cast<float>(vaddvq_s32(s)) * (half(row) * dx[b]);
  }
  return sum;
}

PLLM_DOTPROD float dot_q4_0_sdot(const uint8_t* row, const int8_t* xq, const float* dx, size_t blocks) {
  float sum = 0.0f;
  const uint8x16_t mask = vdupq_n_u8(0x0F);
  const int8x16_t eight = vdupq_n_s8(8);
  for (size_t b = 0; b < blocks; ++b, row += 18, xq += 32) {
    const uint8x16_t packed = vld1q_u8(row + 2);
    const int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(packed, mask)), eight);  // elements 0..15
    const int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(packed, 4)), eight);   // elements 16..31
    int32x4_t s = vdotq_s32(vdupq_n_s32(0), lo, vld1q_s8(xq));
    s = vdotq_s32(s, hi, vld1q_s8(xq + 16));
    sum += static_cast<float>(vaddvq_s32(s)) * (half(row) * dx[b]);
  }
  return sum;
}
#endif

}  // namespace

bool direct_int8_kernels() {
#ifdef POCKETLLM_QUANT_SDOT
  return cpu_features().arm_dotprod;
#else
  return false;
#endif
}

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
      default:
        if (kquant::has_x86_kernel(t)) return kquant::dot_x86(t, r, x, k / dtype_block_size(t));
        return dot_dequantized(t, r, x, k);
    }
  }
#endif
  switch (t) {
    case DType::kQ8_0: return dot_q8_0(r, x, k / 32);
    case DType::kQ4_0: return dot_q4_0(r, x, k / 32);
    default:
      if (kquant::has_portable_kernel(t)) return kquant::dot_portable(t, r, x, k / dtype_block_size(t));
      return dot_dequantized(t, r, x, k);
  }
}

void linear_quantized(ThreadPool* pool, const float* x, size_t m, size_t k, const Weight& w, float* y) {
  const size_t n = w.rows();
  const uint64_t row_bytes = dtype_bytes(w.dtype, k);
  const auto* data = static_cast<const uint8_t*>(w.data);
  if (n * k < (size_t{1} << 15)) pool = nullptr;
  const size_t chunk = 64;
#ifdef POCKETLLM_QUANT_SDOT
  if (direct_int8_kernels() && (w.dtype == DType::kQ8_0 || w.dtype == DType::kQ4_0)) {
    thread_local std::vector<int8_t> xq;
    thread_local std::vector<float> dx;
    xq.resize(m * k);
    dx.resize(m * (k / 32));
    for (size_t r = 0; r < m; ++r) kquant::quantize_activations(x + r * k, k, xq.data() + r * k, dx.data() + r * (k / 32), nullptr);
    const int8_t* xqp = xq.data();
    const float* dxp = dx.data();
    const bool q8 = w.dtype == DType::kQ8_0;
    parallel_for(pool, (n + chunk - 1) / chunk, [&](size_t c) {
      const size_t n0 = c * chunk, n1 = std::min(n, n0 + chunk);
      for (size_t j = n0; j < n1; ++j)
        for (size_t r = 0; r < m; ++r)
          y[r * n + j] = q8 ? dot_q8_0_sdot(data + j * row_bytes, xqp + r * k, dxp + r * (k / 32), k / 32)
                            : dot_q4_0_sdot(data + j * row_bytes, xqp + r * k, dxp + r * (k / 32), k / 32);
    });
    return;
  }
#endif
#ifdef POCKETLLM_QUANT_X86
  if (direct_kernels_x86() && kquant::has_x86_int8_kernel(w.dtype)) {  // K types: int8 activations
    thread_local std::vector<int8_t> xq;
    thread_local std::vector<float> dx, xs;
    xq.resize(m * k);
    dx.resize(m * (k / 32));
    xs.resize(m * (k / 32));
    for (size_t r = 0; r < m; ++r) kquant::quantize_activations(x + r * k, k, xq.data() + r * k, dx.data() + r * (k / 32), xs.data() + r * (k / 32));
    const int8_t* xqp = xq.data();
    const float *dxp = dx.data(), *xsp = xs.data();
    const size_t blocks = k / dtype_block_size(w.dtype);
    parallel_for(pool, (n + chunk - 1) / chunk, [&](size_t c) {
      const size_t n0 = c * chunk, n1 = std::min(n, n0 + chunk);
      for (size_t j = n0; j < n1; ++j)
        for (size_t r = 0; r < m; ++r)
          y[r * n + j] = kquant::dot_x86_int8(w.dtype, data + j * row_bytes, xqp + r * k, dxp + r * (k / 32), xsp + r * (k / 32), blocks);
    });
    return;
  }
#endif
  parallel_for(pool, (n + chunk - 1) / chunk, [&](size_t c) {
    const size_t n0 = c * chunk, n1 = std::min(n, n0 + chunk);
    for (size_t j = n0; j < n1; ++j) {
      const uint8_t* row = data + j * row_bytes;
      for (size_t r = 0; r < m; ++r) y[r * n + j] = quantized_row_dot(w.dtype, row, x + r * k, k);
    }
  });
}

}  // namespace pocketllm

#include "kernels_gemm.h"
#include "kernels_quant_packed.h"
#include "pocketllm/client/kernels_info.h"
#include "kernels_avx2.h"
#include "kernels_avx512.h"

namespace pocketllm {

std::string kernel_paths() {
  std::string s = "quantized batches: ";
  if (packed_quant_kernels_available()) {
    s += "packed int8 (";
    s += packed_quant_path();
    s += ":";
    for (DType t : {DType::kQ8_0, DType::kQ4_0, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K})
      if (packed_quant_type(t)) s += std::string(" ") + dtype_name(t);
    s += ")";
  } else {
    s += "dequantized tiles + GEMM";
  }
  s += "; decode: ";
  s += direct_kernels_x86() ? "AVX2+FMA+F16C" : direct_int8_kernels() ? "int8 sdot (Armv8.2 dotprod)" : "portable";
  s += "; float GEMM: ";
  if (gemm::chosen_path() != gemm::Path::kEigen) {
    s += gemm::path_name(gemm::chosen_path());
    s += " k block " + std::to_string(gemm::k_block_limit(gemm::chosen_path()));
    const size_t l2 = gemm::l2_cache_bytes();  // W tiles take up to half of it (kernels.cpp)
    s += ", L2 " + (l2 > 0 ? std::to_string(l2 >> 10) + " KiB" : std::string("unknown"));
    s += ", Eigen below " + std::to_string(gemm::kMinRows) + " rows (";
  } else {
    s += "Eigen (";
  }
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
  s += "; softmax/SiLU/log-sum-exp: ";
#if defined(__AVX512F__)
  s += "AVX-512 exp (build ISA)";
#else
  s += avx2::preferred() ? "AVX2+FMA (run-time)" : "Eigen (build ISA)";
#endif
  s += "; narrow-head attention: ";
  s += avx512::chosen()      ? "AVX-512 query lanes (run-time)"
       : avx2::lanes_chosen() ? "AVX2+FMA query lanes (run-time)"
       : avx2::preferred()    ? "AVX2+FMA key lanes (run-time)"
                              : "key lanes (build ISA)";
  s += "; perturbation z: ";
  s += perturbation_path_name(perturbation_path());
  return s;
}

}  // namespace pocketllm
