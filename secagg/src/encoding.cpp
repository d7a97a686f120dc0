#include "pocketllm/secagg/encoding.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

#include "pocketllm/common/os_random.h"

namespace pocketllm::secagg {
namespace {

// A uniform random bit generator over the OS's randomness, for the standard distributions.
struct OsBits {
  using result_type = uint64_t;
  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return ~uint64_t{0}; }
  result_type operator()() { return os_random_u64(); }
};

// Skellam(λ, λ) = Poisson(λ) − Poisson(λ): integer noise whose sum over devices is again Skellam.
int64_t skellam(double lambda) {
  if (lambda <= 0) return 0;
  OsBits bits;
  std::poisson_distribution<long long> poisson(lambda);
  return static_cast<int64_t>(poisson(bits)) - static_cast<int64_t>(poisson(bits));
}

constexpr double kTwo62 = 4611686018427387904.0;
// Poisson sampling stays exact in double arithmetic while the mean is well below 2^52.
constexpr double kMaxLambda = 4503599627370496.0 / 16;

}  // namespace

Status check_capacity(const InputSpec& s, uint32_t n) {
  if (s.tau == 0 || s.tau > 4096) return invalid_argument("secagg: tau must be in 1..4096");
  if (s.scale_bits < 8 || s.scale_bits > 52) return invalid_argument("secagg: scale_bits must be in 8..52");
  if (!(s.bound > 0) || !std::isfinite(s.bound)) return invalid_argument("secagg: the per-scalar bound must be a positive number");
  if (s.max_weight == 0) return invalid_argument("secagg: the largest weight must be at least 1");
  if (!(s.noise_variance >= 0) || !std::isfinite(s.noise_variance)) return invalid_argument("secagg: noise variance must be >= 0");
  if (s.noise_variance / 2 > kMaxLambda)
    return invalid_argument("secagg: the per-device noise (variance " + std::to_string(s.noise_variance) +
                            " in fixed-point units) is too large to sample exactly; lower scale_bits");
  const double w = s.uniform_weights ? 1.0 : static_cast<double>(s.max_weight);
  const double signal = static_cast<double>(n) * w * s.bound * std::ldexp(1.0, s.scale_bits);
  const double noise = 16.0 * std::sqrt(s.noise_variance * n);
  const double weights = static_cast<double>(n) * w;
  if (signal + noise + n >= kTwo62 || weights >= kTwo62)
    return out_of_range("secagg: " + std::to_string(n) + " devices with weight up to " + std::to_string(w) + " and bound " +
                        std::to_string(s.bound) + " at scale 2^" + std::to_string(s.scale_bits) +
                        " could overflow the 64-bit sum; lower scale_bits, the bound or max_examples");
  return Status::ok();
}

Result<std::vector<uint64_t>> encode_input(const InputSpec& s, const std::vector<float>& coeffs, uint64_t examples) {
  if (coeffs.size() != s.tau)
    return invalid_argument("secagg: " + std::to_string(coeffs.size()) + " scalars, the round has " + std::to_string(s.tau));
  const uint64_t weight = s.uniform_weights ? 1 : std::min(examples, s.max_weight);
  if (weight == 0) return invalid_argument("secagg: a device with no examples has nothing to submit");
  const double scale = std::ldexp(1.0, s.scale_bits);
  std::vector<uint64_t> out(input_length(s));
  for (size_t k = 0; k < coeffs.size(); ++k) {
    if (!std::isfinite(coeffs[k])) return invalid_argument("secagg: scalar " + std::to_string(k) + " is not finite");
    const double clipped = std::max(-s.bound, std::min(s.bound, static_cast<double>(coeffs[k])));
    const int64_t q = std::llround(clipped * static_cast<double>(weight) * scale) + skellam(s.noise_variance / 2);
    out[k] = static_cast<uint64_t>(q);
  }
  out[s.tau] = weight;
  return out;
}

Result<std::vector<float>> decode_mean(const InputSpec& s, const std::vector<uint64_t>& sum, uint32_t n, double denominator) {
  if (sum.size() != input_length(s)) return invalid_argument("secagg: the sum has the wrong length");
  const uint64_t weight = sum[s.tau];
  const double w_max = s.uniform_weights ? 1.0 : static_cast<double>(s.max_weight);
  if (weight == 0 || static_cast<double>(weight) > w_max * n)
    return corrupt("secagg: the summed weight " + std::to_string(as_signed(weight)) + " cannot come from " + std::to_string(n) +
                   " devices (a device sent a malformed input)");
  const double d = denominator > 0 ? denominator : static_cast<double>(weight);
  const double scale = std::ldexp(1.0, s.scale_bits);
  // The range check: honest inputs sum to at most weight · B · 2^s in magnitude (+ rounding and the noise's
  // 16-sigma tail); anything beyond is a device that skipped its clipping, and the round is not applied.
  const double limit = static_cast<double>(weight) * s.bound * scale + n + 16.0 * std::sqrt(s.noise_variance * n);
  std::vector<float> out(s.tau);
  for (size_t k = 0; k < s.tau; ++k) {
    const double v = static_cast<double>(as_signed(sum[k]));
    if (std::fabs(v) > limit)
      return corrupt("secagg: scalar " + std::to_string(k) + " of the sum is beyond what clipped inputs can add up to");
    out[k] = static_cast<float>(v / scale / d);
  }
  return out;
}

}  // namespace pocketllm::secagg
