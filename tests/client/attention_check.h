// Shared by the attention and vector-exp tests: seeded uniform inputs, the worst error of a vector exp, a
// double softmax, a check of a query-lane kernel against it, a causal two-sequence case, and
// attention_max_error, which runs kernels.cpp's attention and the scalar reference on the same inputs and
// returns the largest absolute difference over the queries that are not padding.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels.h"
#include "kernels_ref.h"
#include "pocketllm/common/thread_pool.h"

namespace pocketllm::test {

// n floats drawn uniformly from [lo, hi) by a seeded generator.
inline std::vector<float> uniform(size_t n, float lo, float hi, unsigned seed) {
  std::mt19937 r(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(r);
  return v;
}

// The worst relative error against std::exp (in double) of a vector exp `fn(x, n, out)` over 100 003
// uniform points of [-87, 88] and a few exact ones (0, -0, ±1, the ends, a tiny value, ±ln2/2).
template <class Fn>
double exp_worst_relative_error(Fn&& fn) {
  auto x = uniform(100003, -87.0f, 88.0f, 1);
  x.insert(x.end(), {0.0f, -0.0f, 1.0f, -1.0f, 88.0f, -87.0f, 1e-30f, 0.34657359f, -0.34657359f});
  std::vector<float> y(x.size());
  fn(x.data(), x.size(), y.data());
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double ref = std::exp(static_cast<double>(x[i]));
    worst = std::max(worst, std::fabs(y[i] - ref) / ref);
  }
  return worst;
}

// One query's attention over keys 0 .. visible - 1 in double: the textbook softmax of the scaled scores.
inline std::vector<double> softmax_reference(const float* q, size_t hd, size_t visible, const float* k,
                                             const float* v, size_t kv_stride, float scale) {
  std::vector<double> s(visible), out(hd, 0.0);
  double mx = -INFINITY, sum = 0;
  for (size_t j = 0; j < visible; ++j) {
    double dot = 0;
    for (size_t d = 0; d < hd; ++d) dot += double(q[d] * scale) * k[j * kv_stride + d];
    s[j] = dot;
    mx = std::max(mx, dot);
  }
  for (size_t j = 0; j < visible; ++j) sum += s[j] = std::exp(s[j] - mx);
  for (size_t j = 0; j < visible; ++j)
    for (size_t d = 0; d < hd; ++d) out[d] += s[j] / sum * v[j * kv_stride + d];
  return out;
}

// A query-lane kernel fn(hd, n, q, stride, visible, k, v, kv_stride, scale, scratch, o) with `width` lanes
// (scratch: scratch_floats, enough for kLaneKeys keys) on kLaneKeys causal queries, rows of wider tensors as
// in a layer: in groups of `width` from query 0, then again in groups of width/2 + 1 … width - 1 from other
// starts, so that a query lands in another lane and beside other queries.
constexpr size_t kLaneKeys = 53;
struct LaneCheck {
  bool same_bytes = false;  // both groupings gave the same bytes
  bool head_only = true;    // nothing past the head's own hd floats of an output row was written
  double worst = 0;         // the largest difference from softmax_reference
};

template <class Fn>
LaneCheck query_lanes_check(Fn&& fn, size_t width, size_t scratch_floats, size_t hd) {
  const size_t keys = kLaneKeys, kv_stride = 3 * hd, stride = 5 * hd;
  const auto q = uniform(keys * stride, -2, 2, 7 + hd), k = uniform(keys * kv_stride, -2, 2, 8 + hd),
             v = uniform(keys * kv_stride, -2, 2, 9 + hd);
  const float scale = 0.3f;
  std::vector<size_t> visible(keys);
  for (size_t t = 0; t < keys; ++t) visible[t] = t + 1;
  std::vector<float> scratch(scratch_floats), a(keys * stride, 0.0f), b(keys * stride, 0.0f);
  for (size_t t = 0; t < keys; t += width)
    fn(hd, std::min(width, keys - t), q.data() + t * stride, stride, &visible[t], k.data(), v.data(), kv_stride, scale,
       scratch.data(), a.data() + t * stride);
  const size_t least = width / 2 + 1, sizes = width - 1 - least + 1;
  for (size_t t = 0, n = least; t < keys; t += n, n = least + (n - least + 1) % sizes)
    fn(hd, std::min(n, keys - t), q.data() + t * stride, stride, &visible[t], k.data(), v.data(), kv_stride, scale,
       scratch.data(), b.data() + t * stride);
  LaneCheck c;
  c.same_bytes = std::equal(a.begin(), a.end(), b.begin(), [](float x, float y) { return std::memcmp(&x, &y, 4) == 0; });
  for (size_t t = 0; t < keys; ++t) {
    const auto want = softmax_reference(q.data() + t * stride, hd, visible[t], k.data(), v.data(), kv_stride, scale);
    for (size_t d = 0; d < hd; ++d) c.worst = std::max(c.worst, std::fabs(a[t * stride + d] - want[d]));
    for (size_t d = hd; d < stride; ++d) c.head_only = c.head_only && a[t * stride + d] == 0.0f;
  }
  return c;
}

// A causal attention of two sequences (the second 9 keys short), 4 heads over 2 KV heads of width hd,
// tq queries after `past` cached positions, inputs uniform in [-2, 2) seeded by hd and past.
struct AttentionCase {
  AttentionShape s;
  std::vector<int32_t> len;
  std::vector<float> q, k, v;
};

inline AttentionCase causal_two_sequences(size_t hd, size_t past, size_t tq) {
  AttentionCase c;
  c.s.batch = 2;
  c.s.tq = tq;
  c.s.tk = past + tq;
  c.s.heads = 4;
  c.s.kv_heads = 2;
  c.s.head_dim = hd;
  c.s.past = past;
  c.s.causal = true;
  c.len = {static_cast<int32_t>(c.s.tk), static_cast<int32_t>(c.s.tk) - 9};
  const unsigned seed = static_cast<unsigned>(hd + past);
  c.q = uniform(c.s.batch * c.s.tq * c.s.heads * hd, -2, 2, 10 + seed);
  c.k = uniform(c.s.batch * c.s.tk * c.s.kv_heads * hd, -2, 2, 20 + seed);
  c.v = uniform(c.s.batch * c.s.tk * c.s.kv_heads * hd, -2, 2, 30 + seed);
  return c;
}

inline double attention_max_error(const AttentionShape& s, const std::vector<float>& q, const std::vector<float>& k,
                                  const std::vector<float>& v, const std::vector<int32_t>& len) {
  std::vector<float> fast(q.size()), ref(q.size());
  ThreadPool pool(2);
  attention(&pool, s, q.data(), k.data(), v.data(), len.data(), fast.data());
  ref::attention(s, q.data(), k.data(), v.data(), len.data(), ref.data());
  const size_t width = s.heads * s.head_dim;
  double worst = 0;
  for (size_t b = 0; b < s.batch; ++b)
    for (size_t t = 0; t < s.tq; ++t) {
      if (s.past + t >= static_cast<size_t>(len[b])) continue;  // a padded query: no meaningful output
      for (size_t e = 0; e < width; ++e) {
        const size_t i = (b * s.tq + t) * width + e;
        worst = std::max(worst, double(std::fabs(fast[i] - ref[i])));
      }
    }
  return worst;
}

}  // namespace pocketllm::test
