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

// Narrow-head attention with 8 queries in the lanes: kernels_avx512.h's query-lane kernel at half its
// width, with this file's exp. A key's score, its exp and its share of the output are one 8-lane vector for
// 8 queries; the causal mask is a lane blend (scores to -inf, the value products of masked keys left out of
// the accumulators, so a huge, infinite or NaN key or value a query must not see cannot reach it); the keys
// are taken in order 0, 1, … in every lane, so a query gives the same bytes in any lane of any group.
//
// kernels.cpp routes groups of ≥ kMinLaneQueries queries of heads 8 or 16 wide here when lanes_chosen()
// and the AVX-512 query lanes are not (on an AVX2-only CPU, in any x86-64 build). POCKETLLM_ATTENTION=keys
// turns both query-lane kernels off (the key-lane groups above), POCKETLLM_ATTENTION=avx2 takes this one
// on an AVX-512 CPU as well (the AVX2 proxy's benches).
bool lanes_chosen();
// Tests: 1 takes the query lanes (if supported()), 0 leaves them, -1 as chosen.
void set_lanes_preference_for_testing(int mode);

constexpr size_t kMinLaneQueries = 4;

// Floats of scratch attention_query_lanes needs for `keys` keys (32-byte alignment included).
inline size_t lane_scratch_floats(size_t keys) { return keys * 8 + 8; }

// n ≤ 8 consecutive queries of one (sequence, head), head width hd (8 or 16): query g's row is
// q + g * stride (scaled by `scale` before the products), its output o + g * stride; it sees keys
// 0 .. visible[g] - 1 (visible[g] ≥ 1), key j's row k + j * kv_stride, its value v + j * kv_stride.
// scratch: lane_scratch_floats(max visible) floats. Requires supported().
void attention_query_lanes(size_t hd, size_t n, const float* q, size_t stride, const size_t* visible, const float* k,
                           const float* v, size_t kv_stride, float scale, float* scratch, float* o);

}  // namespace pocketllm::avx2
