// A 32-byte key from 64 hex digits, for the tests' known-answer vectors.
#pragma once

#include <string>

#include "pocketllm/secagg/crypto.h"

namespace pocketllm::secagg::test {

inline Key32 hex32(const std::string& h) {
  Key32 k{};
  for (size_t i = 0; i < 32; ++i) k[i] = static_cast<uint8_t>(std::stoi(h.substr(2 * i, 2), nullptr, 16));
  return k;
}

}  // namespace pocketllm::secagg::test
