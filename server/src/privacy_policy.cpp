#include "pocketllm/server/privacy_policy.h"

#include <cmath>
#include <limits>

#include "pocketllm/common/os_random.h"
#include "pocketllm/common/sha256.h"
#include "pocketllm/privacy/accountant.h"

namespace pocketllm::server {

const char* dp_mode_name(DpMode m) {
  switch (m) {
    case DpMode::kOff: return "off";
    case DpMode::kCentral: return "central";
    case DpMode::kLocal: return "local";
  }
  return "off";
}

bool parse_dp_mode(const std::string& text, DpMode* out) {
  for (DpMode m : {DpMode::kOff, DpMode::kCentral, DpMode::kLocal})
    if (text == dp_mode_name(m)) {
      *out = m;
      return true;
    }
  return false;
}

PrivacyStatus privacy_status(const PrivacyPolicy& p, const privacy::RoundAccountant& accountant, uint64_t rounds_applied) {
  PrivacyStatus s;
  s.rounds_applied = rounds_applied;
  if (!p.enabled()) return s;
  s.epsilon_spent = accountant.epsilon(rounds_applied, p.delta).epsilon;
  s.epsilon_next = accountant.epsilon(rounds_applied + 1, p.delta).epsilon;
  s.exhausted = s.epsilon_next > p.target_epsilon;
  const uint64_t fit = accountant.max_rounds(p.target_epsilon, p.delta);
  s.rounds_left = fit > rounds_applied ? fit - rounds_applied : 0;
  return s;
}

bool is_sampled(uint64_t sampling_key, uint64_t round, const std::string& device, double q) {
  if (q >= 1.0) return true;
  Sha256 h;
  h.update("pocketllm-sampling-v1", 21);
  h.update_u64le(sampling_key);
  h.update_u64le(round);
  h.update(device);
  const auto d = h.finish();
  uint64_t x = 0;
  for (int i = 0; i < 8; ++i) x = (x << 8) | d[i];
  // x / 2^64 is uniform in [0, 1): sampled when below q.
  return static_cast<double>(x) * 0x1p-64 < q;
}

double l2_norm(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += static_cast<double>(x) * x;
  return std::sqrt(s);
}

Result<std::vector<float>> aggregate_private(const std::vector<Submission>& subs, size_t tau, const PrivacyPolicy& p,
                                             const std::function<double()>& gaussian) {
  if (subs.empty()) return invalid_argument("no submissions to aggregate");
  std::vector<double> sum(tau, 0.0);
  for (const Submission& s : subs) {
    if (s.coeffs.size() != tau) return invalid_argument("a submission has the wrong number of scalars");
    const double w = std::min(1.0, s.weight);  // staleness can only lower a device's influence
    for (size_t k = 0; k < tau; ++k) sum[k] += w * s.coeffs[k];
  }
  std::vector<float> out(tau);
  for (size_t k = 0; k < tau; ++k) {
    double v;
    if (p.mode == DpMode::kCentral) v = (sum[k] + p.noise_multiplier * p.clip_norm * gaussian()) / p.denominator;
    else v = sum[k] / static_cast<double>(subs.size());
    out[k] = static_cast<float>(v);
  }
  return out;
}

double system_gaussian() { return os_gaussian(); }

}  // namespace pocketllm::server
