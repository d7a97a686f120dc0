// AVX-512 kernels of the forward chosen at run time in every x86-64 build (target attributes, like
// kernels_avx2.h): the exp the AVX-512 builds' element-wise kernels share (kernels_exp.h), and narrow-head
// attention with the queries in the lanes.
//
// Query-lane attention: for heads of 8 or 16, a key's score, its exp and its share of the output are one
// 16-lane vector for 16 queries at once. The causal mask is a lane mask, the softmax's maximum and sum are
// taken across vectors (no horizontal reductions), and the product with the values is HD FMAs a key for
// the 16 queries, against two a query where the keys sit in the lanes (kernels.cpp's
// attention_query_group). On an Intel Xeon it cut stories260K's attention from a quarter of the forward
// to a sixth.
//
// Each lane's result depends only on its own query, keys and values: a key past a query's last visible
// one is masked out of the maximum, the sum and the product (so a huge, infinite or NaN key or value it
// must not see cannot reach it), and the keys are taken in order 0, 1, … in every lane. A query gives the
// same bytes in any lane of any group.
#pragma once

#include <cstddef>

namespace pocketllm::avx512 {

// True when these kernels are compiled in (x86-64, GCC or Clang) and the CPU has AVX-512F.
bool supported();
// True when kernels.cpp should route narrow heads to the query-lane kernel: supported(), unless
// POCKETLLM_ATTENTION=keys (the key-lane kernels), POCKETLLM_ATTENTION=avx2 (kernels_avx2.h's eight-lane
// version) or a test says otherwise.
bool chosen();
// Tests: 1 routes through the query-lane kernel (if supported()), 0 through the key-lane ones, -1 as chosen.
void set_preference_for_testing(int mode);

// exp(x[i]) for i < n into out (out may be x): kernels_exp.h's exp_ps, 16 lanes at a time (the tail
// padded with 0). Requires supported().
void exp(const float* x, size_t n, float* out);

// Groups of fewer queries go to the key-lane kernels (a decoding step's single query would fill one lane).
constexpr size_t kMinLaneQueries = 8;

// Floats of scratch attention_query_lanes needs for `keys` keys (64-byte alignment included).
inline size_t lane_scratch_floats(size_t keys) { return keys * 16 + 16; }

// n ≤ 16 consecutive queries of one (sequence, head), head width hd (8 or 16): query g's row is
// q + g * stride (scaled by `scale` before the products), its output o + g * stride; it sees keys
// 0 .. visible[g] - 1 (visible[g] ≥ 1), key j's row k + j * kv_stride, its value v + j * kv_stride.
// scratch: lane_scratch_floats(max visible) floats. Requires supported().
void attention_query_lanes(size_t hd, size_t n, const float* q, size_t stride, const size_t* visible, const float* k,
                           const float* v, size_t kv_stride, float scale, float* scratch, float* o);

}  // namespace pocketllm::avx512
