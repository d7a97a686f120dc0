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

// Portable versions (eight float lanes the compiler vectorises: NEON on arm64) for the types with one:
// Q4_K, Q5_K, Q6_K. What CPUs without the x86 kernels run (kernels_kquant_portable.cpp).
bool has_portable_kernel(DType t);
float dot_portable(DType t, const uint8_t* row, const float* x, size_t blocks);

}  // namespace pocketllm::kquant
