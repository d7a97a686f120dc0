// Element types of stored tensors (the safetensors dtype strings, and ggml's block-quantized types that
// GGUF files store: docs/gguf.md) and exact conversions to float32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace pocketllm {

enum class DType : uint8_t {
  kF32, kF16, kBF16, kF64, kI64, kI32, kI16, kI8, kU8, kU16, kU32, kU64, kBool, kF8E4M3, kF8E5M2,
  // Block-quantized (ggml): a tensor row is a whole number of blocks of dtype_block_size() elements.
  kQ8_0, kQ4_0, kQ4_K, kQ6_K,
  kQ4_1, kQ5_0, kQ5_1, kQ2_K, kQ3_K, kQ5_K,  // appended: read, never written
};

const char* dtype_name(DType t);  // "F32", "BF16", ..., "Q8_0", "Q4_K"
// Safetensors dtype strings only: block-quantized names are refused (safetensors cannot hold them).
bool parse_dtype(std::string_view name, DType* out);
// Bytes per element of an element type; 0 for block-quantized types (use dtype_bytes).
size_t dtype_size(DType t);
bool dtype_is_quantized(DType t);
size_t dtype_block_size(DType t);   // elements per block: 1, or 32 (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1), or 256 (the K types)
size_t dtype_block_bytes(DType t);  // bytes per block: dtype_size, or ggml's (Q8_0 34, Q4_0 18, ..., Q6_K 210)
// Bytes of `count` elements; `count` must be a multiple of dtype_block_size (callers check).
uint64_t dtype_bytes(DType t, uint64_t count);
bool dtype_is_float_weights(DType t);  // F32, F16 or BF16: what models may store weights in
bool dtype_is_weight_type(DType t);    // a float weight type or a block-quantized one

float f16_to_f32(uint16_t h);
float bf16_to_f32(uint16_t b);
uint16_t f32_to_f16(float f);   // round to nearest even; overflow to inf
uint16_t f32_to_bf16(float f);  // round to nearest even; NaN stays NaN

// out[i] = element i of `src` (dtype F32, F16, BF16 or a block-quantized type, dequantized exactly as
// ggml does) as float32. For quantized types `src` is at a block boundary and `count` a multiple of the
// block size. Returns false for other dtypes.
bool convert_to_f32(DType t, const void* src, size_t count, float* out);

}  // namespace pocketllm
