// Direct dot products of one quantized row with float activations for the block types read from
// llama.cpp's files beyond Q8_0/Q4_0 (Q2_K … Q6_K — the Q4_K_M / Q5_K_M / Q3_K_M / Q2_K files — and the
// legacy Q4_1, Q5_0, Q5_1): each block's quants are widened in registers, multiplied by the activations
// and scaled per sub-block, never written out as floats. AVX2+FMA+F16C, compiled with target attributes
// and called only when direct_kernels_x86(); the other types and CPUs take the per-row dequantization.
// The element order is the dequantizer's (docs/gguf.md §4); tests/client/test_kernels_quant.cpp checks
// every type against dequantize-then-multiply.
#pragma once

#include <cstddef>
#include <cstdint>

#include "pocketllm/common/dtype.h"

namespace pocketllm::kquant {

// Whether `t` has a direct x86 kernel here.
bool has_x86_kernel(DType t);
// The dot product of a row of `blocks` blocks of type t with x (blocks · block size floats). Only for
// has_x86_kernel(t), on a CPU with AVX2, FMA and F16C.
float dot_x86(DType t, const uint8_t* row, const float* x, size_t blocks);

// Decode with int8 activations (Q4_K, Q5_K, Q6_K on x86 with AVX2): the activations are quantized per
// 32-element block as the packed Q8_0/Q4_0 kernels quantize them (d = max|x| / 127, q = round-half-even(x / d),
// docs/gguf.md §7), with each block's sum d·Σq kept for the K types' minimums; u8 × s8 products
// (vpmaddubsw) summed exactly in int32 per sub-block, scaled in float. As llama.cpp decodes them.
bool has_x86_int8_kernel(DType t);
// k a multiple of 32; NaN d for non-finite blocks; xsum may be NULL (arm64's sdot kernels use q and d only).
void quantize_activations(const float* x, size_t k, int8_t* q, float* d, float* xsum);
float dot_x86_int8(DType t, const uint8_t* row, const int8_t* xq, const float* dx, const float* xsum, size_t blocks);

// Portable versions (eight float lanes the compiler vectorises: NEON on arm64) for the types with one:
// Q4_K, Q5_K, Q6_K. What CPUs without the x86 kernels run (kernels_kquant_portable.cpp).
bool has_portable_kernel(DType t);
float dot_portable(DType t, const uint8_t* row, const float* x, size_t blocks);

}  // namespace pocketllm::kquant
