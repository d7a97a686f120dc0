// Matrix products with block-quantized weights (Q8_0, Q4_0 here; the other GGUF types through
// kernels_kquant.h on x86, per-row dequantization elsewhere) for few activation rows — single-token decoding and small batches — where
// dequantizing whole tiles for a GEMM would cost as much as the product. Activations stay float32; each
// weight block is widened in registers and multiplied in place (AVX-512, AVX2+FMA, or portable code the
// compiler vectorizes for NEON). Tested against dequantize-then-float32 (tests/client/test_kernels_quant.cpp).
#pragma once

#include <cstddef>

#include "pocketllm/client/weights.h"
#include "pocketllm/common/thread_pool.h"

namespace pocketllm {

// Rows this kernel is used for (at most): above it, dequantized tiles + GEMM are faster.
constexpr size_t kQuantDirectMaxRows = 4;
// Weights the direct kernel serves: block-quantized, and frozen F16/BF16 (converted in registers).
inline bool direct_kernel_type(DType t) { return dtype_is_quantized(t) || t == DType::kF16 || t == DType::kBF16; }

// Y[M, N] = X[M, K] * W[N, K]^T for a block-quantized or F16/BF16 W (frozen: never perturbed). Parallel over rows of W.
void linear_quantized(ThreadPool* pool, const float* x, size_t m, size_t k, const Weight& w, float* y);

// Whether the AVX2+FMA+F16C direct kernels run on this CPU (x86-64, checked once at run time).
bool direct_kernels_x86();
// Whether Q8_0/Q4_0 decoding runs int8 dot products (arm64 with dotprod): activations are then quantized
// per 32-element block as the packed kernels do.
bool direct_int8_kernels();

// One dot product of a quantized row of `k` elements with float x (the reference path of the kernel).
float quantized_row_dot(DType t, const void* row, const float* x, size_t k);

}  // namespace pocketllm
