// Reinterpreting float32 as its bits and back (memcpy: well-defined, compiles to a register move).
#pragma once

#include <cstdint>
#include <cstring>

namespace pocketllm::bits {

inline uint32_t of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

inline float to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

}  // namespace pocketllm::bits
