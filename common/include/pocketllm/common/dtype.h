// Element types of stored tensors (the safetensors dtype strings) and exact conversions to float32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace pocketllm {

enum class DType : uint8_t { kF32, kF16, kBF16, kF64, kI64, kI32, kI16, kI8, kU8, kU16, kU32, kU64, kBool, kF8E4M3, kF8E5M2 };

const char* dtype_name(DType t);  // "F32", "BF16", ...
bool parse_dtype(std::string_view name, DType* out);
size_t dtype_size(DType t);
bool dtype_is_float_weights(DType t);  // F32, F16 or BF16: what models may store weights in

float f16_to_f32(uint16_t h);
float bf16_to_f32(uint16_t b);
uint16_t f32_to_f16(float f);   // round to nearest even; overflow to inf
uint16_t f32_to_bf16(float f);  // round to nearest even; NaN stays NaN

// out[i] = element i of `src` (dtype F32, F16 or BF16) as float32. Returns false for other dtypes.
bool convert_to_f32(DType t, const void* src, size_t count, float* out);

}  // namespace pocketllm
