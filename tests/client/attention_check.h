// Shared by the attention and vector-exp tests: seeded uniform inputs, the worst error of a vector exp, a
// causal two-sequence case, and attention_max_error, which runs kernels.cpp's attention and the scalar reference on the same inputs
// and returns the largest absolute difference over the queries that are not padding.
#pragma once

#include <algorithm>
#include <cmath>
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
