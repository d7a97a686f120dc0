#include "pocketllm/secagg/graph.h"

#include <algorithm>
#include <cmath>

#include "pocketllm/common/seeds.h"

namespace pocketllm::secagg {

uint32_t default_degree(uint32_t n) {
  if (n <= 1) return 0;
  const uint32_t k = 2 * static_cast<uint32_t>(std::ceil(3.0 * std::log2(static_cast<double>(n))));
  return std::min(n - 1, std::max<uint32_t>(k, 2));
}

uint32_t default_share_threshold(uint32_t k) { return k / 2 + 1; }

Graph::Graph(uint64_t seed, uint32_t n, uint32_t k) : n_(n) {
  k_ = n == 0 ? 0 : std::min(n - 1, k + (k % 2));
  // The ring order: Fisher–Yates from the end, swapping i with splitmix64(seed ^ splitmix64(i)) mod (i + 1).
  ring_.resize(n);
  for (uint32_t i = 0; i < n; ++i) ring_[i] = i;
  for (uint32_t i = n == 0 ? 0 : n - 1; i > 0; --i) {
    const uint64_t r = splitmix64(seed ^ splitmix64(i));
    std::swap(ring_[i], ring_[static_cast<uint32_t>(r % (static_cast<uint64_t>(i) + 1))]);
  }
  pos_.resize(n);
  for (uint32_t p = 0; p < n; ++p) pos_[ring_[p]] = p;
}

std::vector<uint32_t> Graph::neighbours(uint32_t i) const {
  std::vector<uint32_t> a;
  if (i >= n_) return a;
  a.reserve(k_);
  if (k_ == n_ - 1) {
    for (uint32_t j = 0; j < n_; ++j)
      if (j != i) a.push_back(j);
    return a;
  }
  for (uint32_t d = 1; d <= k_ / 2; ++d) {
    a.push_back(ring_[(pos_[i] + d) % n_]);
    a.push_back(ring_[(pos_[i] + n_ - d) % n_]);
  }
  std::sort(a.begin(), a.end());
  return a;
}

bool Graph::adjacent(uint32_t i, uint32_t j) const {
  if (i >= n_ || j >= n_ || i == j) return false;
  if (k_ == n_ - 1) return true;
  const uint32_t d = pos_[i] > pos_[j] ? pos_[i] - pos_[j] : pos_[j] - pos_[i];
  return std::min(d, n_ - d) <= k_ / 2;
}

uint8_t Graph::share_point(uint32_t i, uint32_t j) const {
  if (!adjacent(i, j)) return 0;
  const std::vector<uint32_t> a = neighbours(i);
  return static_cast<uint8_t>(1 + (std::lower_bound(a.begin(), a.end(), j) - a.begin()));
}

}  // namespace pocketllm::secagg
