// Scalar reference versions of the kernels in kernels.h: plain loops in double precision, written for
// clarity, used only by tests to check the fast paths.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels.h"

namespace pocketllm::ref {

void linear(const float* x, size_t m, size_t k, const float* w, size_t n, const float* bias, float* y);
void rms_norm(const float* x, size_t m, size_t d, const float* gamma, float eps, float* out);
void layer_norm(const float* x, size_t m, size_t d, const float* gamma, const float* beta, float eps, float* out);
void rope(float* x, size_t m, size_t heads, size_t hd, const int32_t* positions, double theta);
void attention(const AttentionShape& s, const float* q, const float* k, const float* v, const int32_t* key_len, float* out);
void silu_mul(float* gate, const float* up, size_t n);
void gelu_tanh_mul(float* gate, const float* up, size_t n);
void softmax_rows(float* x, size_t m, size_t n);

}  // namespace pocketllm::ref
