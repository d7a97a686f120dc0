// Differential privacy of a task's rounds (docs/privacy.md): the mechanism the operator chose, which
// devices a round samples, how their scalars are combined with noise, and the budget the server
// enforces. Pure functions over plain data beside the round logic (rounds.h); the accounting itself
// is pocketllm_privacy's.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "pocketllm/common/status.h"
#include "pocketllm/privacy/accountant.h"
#include "pocketllm/server/aggregation.h"

namespace pocketllm::server {

enum class DpMode {
  kOff,
  kCentral,  // the server is trusted: devices clip, the server adds N(0, (sigma C)^2) to each per-seed sum
  kLocal,    // the server is not trusted: each device clips and adds the noise itself before upload
};
const char* dp_mode_name(DpMode m);
bool parse_dp_mode(const std::string& text, DpMode* out);

struct PrivacyPolicy {
  DpMode mode = DpMode::kOff;
  double clip_norm = 0;         // C: the L2 bound of one device's tau-vector of scalars
  double noise_multiplier = 0;  // sigma: noise standard deviation in units of C
  double sampling_rate = 1;     // q: each device takes part in a round with this probability (Poisson)
  double target_epsilon = 0;    // the budget: no round opens that would take epsilon past it (at delta)
  double delta = 0;
  double denominator = 0;       // central: the fixed, public divisor of the noisy sums (expected participants)
  bool enabled() const { return mode != DpMode::kOff; }
};

struct PrivacyStatus {
  uint64_t rounds_applied = 0;
  double epsilon_spent = 0;  // after the applied rounds
  double epsilon_next = 0;   // if one more round were applied
  uint64_t rounds_left = 0;  // rounds that still fit in the budget
  bool exhausted = false;    // epsilon_next > target: no round opens
};
// `accountant` is the policy's (q, sigma) one, computed once per task (privacy/accountant.h).
PrivacyStatus privacy_status(const PrivacyPolicy& p, const privacy::RoundAccountant& accountant, uint64_t rounds_applied);

// Poisson sampling: whether `device` is asked to take part in `round`, with probability q, decided by
// SHA-256 over a per-task secret key, the round and the device id (devices cannot predict or choose it).
bool is_sampled(uint64_t sampling_key, uint64_t round, const std::string& device, double q);

double l2_norm(const std::vector<float>& v);

// One coefficient per seed from the submissions of a private round. Central: (sum_i w_i c_i + N(0, (sigma C)^2))
// / denominator, where w_i <= 1 is a submission's staleness weight; local: the devices' noisy vectors
// averaged (sum / count). Every submission must already be within the clip norm (submit() checks).
// `gaussian` draws one standard normal value.
Result<std::vector<float>> aggregate_private(const std::vector<Submission>& submissions, size_t tau, const PrivacyPolicy& p,
                                             const std::function<double()>& gaussian);

// A standard normal draw from the operating system's randomness (std::random_device), for the noise.
double system_gaussian();

}  // namespace pocketllm::server
