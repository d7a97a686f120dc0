// The SecAgg+ communication graph (Bell et al., CCS 2020; docs/secagg.md §4): each of the n participants of
// a round exchanges keys, shares and masks with its k neighbours only. The graph is a ring of degree k over a
// permutation of the participants drawn from a public seed: participant i sits at ring position pos(i) and
// its neighbours are the participants at positions pos(i) ± 1 … ± k/2 (mod n). With k ≥ n − 1 every
// participant is every other's neighbour (the complete graph of Bonawitz et al.). Every device and the
// server compute the same graph from (seed, n, k).
#pragma once

#include <cstdint>
#include <vector>

namespace pocketllm::secagg {

// The default degree: min(n − 1, 2 ⌈3 log2 n⌉), at least 2 — enough that, with a fifth of the devices gone,
// each device keeps more than half its neighbours but for odds docs/secagg.md §4 gives.
uint32_t default_degree(uint32_t n);
// The default share threshold for degree k: a strict majority of the neighbourhood, ⌊k/2⌋ + 1.
uint32_t default_share_threshold(uint32_t k);

class Graph {
 public:
  // k is rounded up to even below n − 1 and capped at n − 1; n ≥ 1.
  Graph(uint64_t seed, uint32_t n, uint32_t k);

  uint32_t size() const { return n_; }
  uint32_t degree() const { return k_; }
  // Participant i's neighbours, ascending (computed: O(k log k)).
  std::vector<uint32_t> neighbours(uint32_t i) const;
  bool adjacent(uint32_t i, uint32_t j) const;
  // The Shamir point of holder j for i's secrets: 1 + j's place in neighbours(i); 0 when j is not a neighbour.
  uint8_t share_point(uint32_t i, uint32_t j) const;

 private:
  uint32_t n_, k_;
  std::vector<uint32_t> ring_, pos_;  // ring_[p]: the participant at position p; pos_ its inverse
};

}  // namespace pocketllm::secagg
