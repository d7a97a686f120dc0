#include "pocketllm/common/dtype.h"

#include <cstring>

#include "bits.h"
#include "pocketllm/common/cpu_features.h"
// x86-64: the bulk F16/BF16 conversions use F16C/AVX2 where the CPU has them (chosen at run time).
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define POCKETLLM_DTYPE_X86 1
#endif
#include "pocketllm/common/quant.h"

namespace pocketllm {
namespace {

struct DTypeInfo {
  DType type;
  const char* name;
  size_t block;        // elements per block (1: a plain element type)
  size_t block_bytes;  // bytes per block
};
constexpr DTypeInfo kDTypes[] = {
    {DType::kF32, "F32", 1, 4},   {DType::kF16, "F16", 1, 2},   {DType::kBF16, "BF16", 1, 2},         {DType::kF64, "F64", 1, 8},
    {DType::kI64, "I64", 1, 8},   {DType::kI32, "I32", 1, 4},   {DType::kI16, "I16", 1, 2},           {DType::kI8, "I8", 1, 1},
    {DType::kU8, "U8", 1, 1},     {DType::kU16, "U16", 1, 2},   {DType::kU32, "U32", 1, 4},           {DType::kU64, "U64", 1, 8},
    {DType::kBool, "BOOL", 1, 1}, {DType::kF8E4M3, "F8_E4M3", 1, 1}, {DType::kF8E5M2, "F8_E5M2", 1, 1},
    {DType::kQ8_0, "Q8_0", 32, 34}, {DType::kQ4_0, "Q4_0", 32, 18}, {DType::kQ4_K, "Q4_K", 256, 144},
    {DType::kQ6_K, "Q6_K", 256, 210}, {DType::kQ4_1, "Q4_1", 32, 20}, {DType::kQ5_0, "Q5_0", 32, 22},
    {DType::kQ5_1, "Q5_1", 32, 24},   {DType::kQ2_K, "Q2_K", 256, 84}, {DType::kQ3_K, "Q3_K", 256, 110},
    {DType::kQ5_K, "Q5_K", 256, 176},
};

const DTypeInfo* info(DType t) {
  for (const auto& d : kDTypes)
    if (d.type == t) return &d;
  return nullptr;
}

inline float float_of(uint32_t u) { return bits::to_float(u); }
inline uint32_t bits_of(float f) { return bits::of(f); }

#ifdef POCKETLLM_DTYPE_X86
bool has_f16c_avx2() {
  static const bool ok = cpu_features().avx2 && cpu_features().f16c;
  return ok;
}

// Elements [0, count / 8 * 8) converted 8 at a time; returns how many.
__attribute__((target("avx2,f16c"))) size_t f16_to_f32_x86(const uint8_t* p, size_t count, float* out) {
  size_t i = 0;
  for (; i + 8 <= count; i += 8)  // F16C: exact, like the scalar conversion (subnormals included)
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2 * i))));
  return i;
}

__attribute__((target("avx2"))) size_t bf16_to_f32_x86(const uint8_t* p, size_t count, float* out) {
  size_t i = 0;
  for (; i + 8 <= count; i += 8) {  // exact: a bf16 is the top half of its float32
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2 * i));
    _mm256_storeu_ps(out + i, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)));
  }
  return i;
}
#endif

}  // namespace

const char* dtype_name(DType t) {
  const DTypeInfo* d = info(t);
  return d ? d->name : "?";
}

bool parse_dtype(std::string_view name, DType* out) {
  for (const auto& d : kDTypes) {
    if (d.block == 1 && name == d.name) {
      *out = d.type;
      return true;
    }
  }
  return false;
}

size_t dtype_size(DType t) {
  const DTypeInfo* d = info(t);
  return d && d->block == 1 ? d->block_bytes : 0;
}

bool dtype_is_quantized(DType t) {
  const DTypeInfo* d = info(t);
  return d && d->block > 1;
}

size_t dtype_block_size(DType t) {
  const DTypeInfo* d = info(t);
  return d ? d->block : 0;
}

size_t dtype_block_bytes(DType t) {
  const DTypeInfo* d = info(t);
  return d ? d->block_bytes : 0;
}

uint64_t dtype_bytes(DType t, uint64_t count) {
  const DTypeInfo* d = info(t);
  return d ? count / d->block * d->block_bytes : 0;
}

bool dtype_is_float_weights(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }
bool dtype_is_weight_type(DType t) { return dtype_is_float_weights(t) || dtype_is_quantized(t); }

float bf16_to_f32(uint16_t b) { return float_of(static_cast<uint32_t>(b) << 16); }

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return float_of(sign | 0x7f800000u | (mant << 13));  // inf / nan
  if (exp != 0) return float_of(sign | ((exp + 112) << 23) | (mant << 13));
  if (mant == 0) return float_of(sign);
  // subnormal: normalise
  int e = -1;
  do {
    ++e;
    mant <<= 1;
  } while ((mant & 0x400u) == 0);
  return float_of(sign | static_cast<uint32_t>(112 - e) << 23 | ((mant & 0x3ffu) << 13));
}

uint16_t f32_to_bf16(float f) {
  const uint32_t u = bits_of(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // quiet NaN
  const uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>((u + rounding) >> 16);
}

uint16_t f32_to_f16(float f) {
  const uint32_t u = bits_of(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to >= 65520: inf
  if (abs >= 0x38800000u) {                                                // normal f16
    const uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
    return static_cast<uint16_t>(sign | ((rounded - 0x38000000u) >> 13));
  }
  // subnormal or zero in f16: value = abs_float * 2^24 rounded to integer (nearest even)
  const float scaled = float_of(abs) * 16777216.0f;  // exact (power of two)
  const uint32_t i = static_cast<uint32_t>(scaled);
  const float frac = scaled - static_cast<float>(i);
  uint32_t r = i;
  if (frac > 0.5f || (frac == 0.5f && (i & 1u))) ++r;
  return static_cast<uint16_t>(sign | r);
}

bool convert_to_f32(DType t, const void* src, size_t count, float* out) {
  if (count == 0) return true;  // an empty tensor: src and out may be null (memcpy's are declared non-null)
  switch (t) {
    case DType::kF32:
      std::memcpy(out, src, count * sizeof(float));
      return true;
    case DType::kBF16: {
      const auto* p = static_cast<const uint8_t*>(src);
      size_t i = 0;
#ifdef POCKETLLM_DTYPE_X86
      if (has_f16c_avx2()) i = bf16_to_f32_x86(p, count, out);
#endif
      for (; i < count; ++i) {
        uint16_t v;
        std::memcpy(&v, p + 2 * i, 2);
        out[i] = bf16_to_f32(v);
      }
      return true;
    }
    case DType::kF16: {
      const auto* p = static_cast<const uint8_t*>(src);
      size_t i = 0;
#ifdef POCKETLLM_DTYPE_X86
      if (has_f16c_avx2()) i = f16_to_f32_x86(p, count, out);
#endif
      for (; i < count; ++i) {
        uint16_t v;
        std::memcpy(&v, p + 2 * i, 2);
        out[i] = f16_to_f32(v);
      }
      return true;
    }
    case DType::kQ8_0:
    case DType::kQ4_0:
    case DType::kQ4_K:
    case DType::kQ6_K:
    case DType::kQ4_1:
    case DType::kQ5_0:
    case DType::kQ5_1:
    case DType::kQ2_K:
    case DType::kQ3_K:
    case DType::kQ5_K:
      dequantize(t, src, count, out);
      return true;
    default:
      return false;
  }
}

}  // namespace pocketllm
