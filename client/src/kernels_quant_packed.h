// Q8_0 / Q4_0 weights repacked for int8 dot-product instructions (x86 AVX-512 VNNI): 16 rows
// interleaved per 32-element block, so one 512-bit multiply-accumulate serves 16 output rows and each
// block's integer sum stays in its lane. Activations are quantized to 8 bits per 32-element block
// (scale = max|x| / 127, as llama.cpp does for these types), products are exact in int32, and each block
// is scaled in float. The layout and arithmetic are in docs/gguf.md §7.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "pocketllm/client/weights.h"
#include "pocketllm/common/thread_pool.h"

namespace pocketllm {

// Whether this binary carries the packed kernels (built for a CPU with AVX-512 VNNI).
bool packed_quant_kernels_available();

// Repacks every Q8_0/Q4_0 matrix whose rows come in groups of 16 (Weight::packed); the packed copy is
// kept in the store. `release(w)` is called after each weight is packed, so a loader can drop the pages
// of the original from memory. Returns the number packed (0 when the kernels are not available).
size_t pack_quantized_weights(WeightStore* ws, const std::function<void(const Weight&)>& release);

// Y[M, N] = X[M, K] * W[N, K]^T through W.packed.
void linear_packed(ThreadPool* pool, const float* x, size_t m, size_t k, const Weight& w, float* y);

}  // namespace pocketllm
