// Shared by the attention tests: seeded uniform inputs, and attention_max_error, which runs kernels.cpp's
// attention and the scalar reference on the same inputs and returns the largest absolute difference over
// the queries that are not padding.
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
