// Deterministic seeds and orders shared by devices and the server: the SplitMix64 step-seed derivation
// and a Philox-driven Fisher–Yates shuffle (docs/training.md). Same results on every platform.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "pocketllm/common/philox.h"

namespace pocketllm {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Direction seed of step t, direction k, of a run (or of round t of a federated task) keyed by `key`
// (docs/training.md "Step seeds"). Directions 0..255 hash (t << 8) | k; from 256 on (n-SPSA and Adam over
// many directions) the input is 2^63 | (t << 16) | k, so no two (t, k) with t < 2^47, k < 2^16 share a seed.
// (With (t << 8) | k for every k, a step t >= 1 gave its direction 256 + j the seed of its direction j.)
inline uint64_t step_seed(uint64_t key, uint64_t step, uint32_t k) {
  const uint64_t in = k < 256 ? (step << 8) | k : (uint64_t{1} << 63) | (step << 16) | (k & 0xffffu);
  return splitmix64(key ^ splitmix64(in));
}

// Fisher–Yates from the end: swap v[i-1] with v[r % i], r = (x0 << 32 | x1) of Philox(counter =
// (c, c >> 32, stream0, stream1), key = seed) with c counting draws from 0.
template <class T>
void philox_shuffle(std::vector<T>& v, uint64_t seed, uint32_t stream0, uint32_t stream1) {
  uint64_t counter = 0;
  for (size_t i = v.size(); i > 1; --i, ++counter) {
    const PhiloxBlock x = philox4x32_10(
        {static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32), stream0, stream1}, philox_key_from_seed(seed));
    std::swap(v[i - 1], v[((static_cast<uint64_t>(x[0]) << 32) | x[1]) % i]);
  }
}

}  // namespace pocketllm
