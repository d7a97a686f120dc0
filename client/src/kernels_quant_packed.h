// Q8_0 / Q4_0 weights (and on x86 Q4_K / Q5_K / Q6_K, kernels_kquant_packed.h) repacked for int8
// dot-product instructions: x86 AVX-512 VNNI (16 rows interleaved per block, so one 512-bit
// multiply-accumulate serves 16 output rows and each block's integer sum stays in its lane), arm64 i8mm
// (smmla: pairs of rows, 8 elements each) or dotprod (sdot: 4 rows x 4 elements per vector). The path is
// chosen once per process from the CPU (kernels_quant_packed_isa.h). Activations are quantized to 8 bits
// per 32-element block (scale = max|x| / 127, as llama.cpp does for these types), products are exact in
// int32, and each block is scaled in float. The layouts and arithmetic are in docs/gguf.md §7.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "pocketllm/client/weights.h"
#include "pocketllm/common/thread_pool.h"

namespace pocketllm {

// The packed path this process runs ("AVX-512 VNNI", "i8mm", "dotprod"), or nullptr when the CPU has
// none (weights then stay as stored: dequantized tiles + GEMM). POCKETLLM_INT8=off turns them off, and
// on an i8mm CPU POCKETLLM_INT8=dotprod takes the sdot kernels (benches compare paths with it).
const char* packed_quant_path();
bool packed_quant_kernels_available();
// Whether weights of type t are packed on this CPU (x86: Q8_0, Q4_0, Q4_K, Q5_K, Q6_K; arm64: Q8_0, Q4_0).
bool packed_quant_type(DType t);

// Repacks every matrix of a packed_quant_type whose rows come in groups of 16 (Weight::packed); the packed copy is
// kept in the store. `release(w)` is called after each weight is packed, so a loader can drop the pages
// of the original from memory. Returns the number packed (0 when the kernels are not available).
size_t pack_quantized_weights(WeightStore* ws, const std::function<void(const Weight&)>& release);

// Activation rows quantized for the packed kernels of one weight type (8 bits per element, one float
// scale and one integer sum per 32-element block).
struct PackedActivations {
  size_t m = 0, k = 0;
  bool offset128 = false;  // x86, Q8_0 weights: quants stored + 128, as unsigned bytes (arm64: signed bytes)
  std::vector<uint8_t> q;
  std::vector<float> d;
  std::vector<int32_t> sum;
  std::vector<int32_t> sum16;  // Q6_K weights: the sums of each block's two halves of 16 (its 16-element scales)
};
void quantize_activations(const float* x, size_t m, size_t k, DType weight_type, PackedActivations* out);

// y[(r - m0) * ldy + j] = row r of the activations . row (row0 + j) of W, for r in [m0, m1), j < nrows;
// row0 and nrows multiples of 16. Single-threaded (callers split the work).
void packed_product(const PackedActivations& x, size_t m0, size_t m1, const Weight& w, size_t row0, size_t nrows, float* y,
                    size_t ldy);

// Rows [row0, row0 + nrows) of a packed weight as float32 (the embedding lookup reads the packed copy,
// so the original's pages stay out of memory).
void unpack_rows(const Weight& w, size_t row0, size_t nrows, float* out);

// Y[M, N] = X[M, K] * W[N, K]^T through W.packed.
void linear_packed(ThreadPool* pool, const float* x, size_t m, size_t k, const Weight& w, float* y);

}  // namespace pocketllm
