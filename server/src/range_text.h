// "[lo, hi]" for a "must be in" message: bounds as short as they are exact (1e-09, 604800), not
// std::to_string's six decimals, which showed a lower bound of 1e-9 as "0.000000".
#pragma once

#include <cstdio>
#include <string>

namespace pocketllm::server {

inline std::string range_text(double lo, double hi) {
  char b[64];
  std::snprintf(b, sizeof b, "[%.10g, %.10g]", lo, hi);
  return b;
}

}  // namespace pocketllm::server
