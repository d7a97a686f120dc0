// AVX2+FMA versions of the forward's element-wise kernels (exp-based: softmax inside small-head attention,
// SiLU, the loss's log-sum-exp), compiled into every x86-64 build with target attributes. kernels.cpp runs
// them when the build's own instruction set has no AVX2 (the portable library the SDK ships, x86-64-v2)
// and the CPU has AVX2+FMA: there its Eigen code is SSE-wide. A native AVX2/AVX-512 build keeps Eigen's
// kernels (as wide or wider). Tests call these directly on any CPU with AVX2 and compare them with
// kernels_ref.
//
// Each is deterministic per element: the same bytes for a row whichever buffer or batch it is in.
#pragma once

#include <cstddef>

namespace pocketllm::avx2 {

// True when these kernels are compiled in (x86-64 with GCC or Clang) and the CPU has AVX2 and FMA.
bool supported();
// True when kernels.cpp should use them: supported() and the build's instruction set lacks AVX2.
// POCKETLLM_VEC=avx2 chooses them in any build on an AVX2 CPU, POCKETLLM_VEC=build never (benches compare
// the two in one binary).
bool preferred();
// Tests: 1 routes kernels.cpp through these (if supported()), 0 through the build's own, -1 as chosen.
void set_preference_for_testing(int mode);

// exp(x[i]) for i < n into out (out may be x). Cephes-style polynomial, within 2 ulp of expf on
// [-87, 88]; 0 below -88 (so -inf gives 0), NaN stays NaN.
void exp(const float* x, size_t n, float* out);

// gate[i] = gate[i] / (1 + exp(-gate[i])) * up[i].
void silu_mul(float* gate, const float* up, size_t n);

// kernels.h logsumexp_fold_rows, eight-lane blocks.
void logsumexp_fold_rows(const float* x, size_t rows, size_t n, float* max, float* sum);

// One group of nq (1 or 4) queries of the small-head attention (head width hd 8 or 16); the arguments
// are attention_query_group's in kernels.cpp: qt[g] query rows, visible[g] keys each sees, kt the keys
// transposed [hd][padded] (padded a multiple of 16), v the values (row stride kv_stride), rows[g] a
// scratch row of `padded` floats per query, ot[g] the output rows.
void attention_query_group(size_t hd, size_t nq, const float* const* qt, const size_t* visible, const float* kt,
                           size_t padded, const float* v, size_t kv_stride, float scale, float* const* rows,
                           float* const* ot);

}  // namespace pocketllm::avx2
