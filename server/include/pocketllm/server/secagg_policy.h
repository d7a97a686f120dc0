// Secure aggregation of a task's rounds (docs/secagg.md): the operator's choice (masked, or plain — the
// same fixed-point sum without masks, for checking), the encoding, the graph, the phase deadlines, and how
// each round's parameters derive from the task. Pure functions over plain data beside the round logic.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

#include "pocketllm/common/status.h"
#include "pocketllm/secagg/messages.h"
#include "pocketllm/server/privacy_policy.h"

namespace pocketllm::server {

enum class SecAggMode {
  kOff,
  kMasked,  // the server learns only the sum of a round's inputs (the SecAgg+ protocol)
  kPlain,   // devices submit their scalars as today; the server sums the same fixed-point encoding in the clear
};
const char* secagg_mode_name(SecAggMode m);

struct SecAggPolicy {
  SecAggMode mode = SecAggMode::kOff;
  double bound = 0;                 // B: each scalar clipped to [-B, B] on the device (DP: the clip norm)
  int scale_bits = 40;              // fixed point 2^scale_bits
  uint32_t degree = 0;              // SecAgg+ neighbours; 0 = the default for the round's size
  uint32_t share_threshold = 0;     // 0 = a majority of the neighbourhood
  int64_t phase_ms = 30'000;        // deadline of each phase after key advertisement
  uint32_t max_participants = 10'000;  // a round takes at most this many devices' keys
  bool enabled() const { return mode != SecAggMode::kOff; }
};

// Reads the task's "secagg" object; `policy` is the rest of the round policy, checked for what cannot
// compose with secure aggregation (median, trimmed mean, the per-scalar clip, stale submissions, fewer than
// two survivors, local DP). tau, max_examples and the DP fields must already be parsed.
struct RoundPolicy;
Status parse_secagg(const nlohmann::json& j, const RoundPolicy& policy, SecAggPolicy* out);
nlohmann::json secagg_to_json(const SecAggPolicy& p);

// The round's secure-aggregation parameters: its id and graph seed derived from the task's seed key,
// t = max(2, min_submissions), the input encoding (DP: uniform weights, the clip norm as bound, and each
// device's share of the noise, (sigma C 2^s)^2 / t, as Skellam).
secagg::RoundConfig secagg_round_config(const RoundPolicy& policy, uint64_t seed_key, uint64_t round);

}  // namespace pocketllm::server
