// One step of a fine-tuning run: theta <- theta - coeff * z(seed) for every trainable tensor.
#pragma once

#include <cstdint>
#include <cstring>

namespace pocketllm {

struct UpdateEntry {
  uint64_t seed = 0;
  float coeff = 0.0f;  // learning rate x projected gradient, pre-multiplied

  bool operator==(const UpdateEntry& o) const;
  bool operator!=(const UpdateEntry& o) const { return !(*this == o); }
};

// Equality compares coeff bit for bit (so -0.0 != 0.0 and a NaN equals itself): logs are byte data.
inline bool UpdateEntry::operator==(const UpdateEntry& o) const {
  uint32_t a, b;
  std::memcpy(&a, &coeff, sizeof a);
  std::memcpy(&b, &o.coeff, sizeof b);
  return seed == o.seed && a == b;
}

}  // namespace pocketllm
