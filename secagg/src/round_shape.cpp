#include <algorithm>
#include <string>

#include "pocketllm/secagg/graph.h"
#include "pocketllm/secagg/messages.h"

namespace pocketllm::secagg {

Result<RoundShape> round_shape(const RoundConfig& c, uint32_t n) {
  if (c.min_survivors < 2)
    return invalid_argument("secagg: min_survivors must be at least 2 (the sum of one device is that device's input)");
  if (n < c.min_survivors)
    return out_of_range("secagg: " + std::to_string(n) + " participants, the round needs " + std::to_string(c.min_survivors));
  RoundShape s;
  const uint32_t k = c.degree == 0 ? default_degree(n) : c.degree;
  s.degree = std::min(n - 1, k + (k % 2));
  if (s.degree > 254)
    return invalid_argument("secagg: degree " + std::to_string(s.degree) +
                            " is above 254 (shares are points of GF(2^8)); give a smaller secagg degree");
  s.share_threshold = c.share_threshold == 0 ? default_share_threshold(s.degree) : c.share_threshold;
  if (s.share_threshold < 1 || s.share_threshold > s.degree)
    return invalid_argument("secagg: share threshold " + std::to_string(s.share_threshold) + " must be in 1.." +
                            std::to_string(s.degree) + " (the degree)");
  POCKETLLM_RETURN_IF_ERROR(check_capacity(c.input, n));
  return s;
}

}  // namespace pocketllm::secagg
