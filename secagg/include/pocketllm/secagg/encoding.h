// The fixed-point encoding of a device's round input (docs/secagg.md §2): τ clipped, weighted scalars and
// the weight, as integers in Z_{2^64}, so that masking and unmasking are exact and the sum decodes to the
// same bits on every machine. The plain protocol (no masks) sums the same integers.
#pragma once

#include <cstdint>
#include <vector>

#include "pocketllm/common/status.h"

namespace pocketllm::secagg {

struct InputSpec {
  uint32_t tau = 0;          // scalars per device
  int scale_bits = 40;       // a scalar v is carried as round(v · 2^scale_bits)
  double bound = 0;          // B: each scalar is clipped to [−B, B] on the device (required, > 0)
  uint64_t max_weight = 1;   // W_max: the largest weight (example count) a device may claim
  bool uniform_weights = false;  // differential privacy: every device weighs 1 (docs/privacy.md §1)
  double noise_variance = 0;     // per device and scalar, in fixed-point units²: Skellam noise (0 = none)
};

// The vector length: τ weighted scalars, then the weight.
inline size_t input_length(const InputSpec& s) { return static_cast<size_t>(s.tau) + 1; }

// Refused unless the sum of n inputs can never leave (−2^63, 2^63): n · W_max · B · 2^scale_bits plus the
// noise's 16-sigma tail must stay below 2^62. Also checks the fields' own ranges.
Status check_capacity(const InputSpec& s, uint32_t n);

// A device's input: each scalar clipped to [−B, B], times the weight (min(examples, W_max), or 1 under
// uniform weights), rounded to fixed point, plus Skellam(λ, λ) noise with 2λ = noise_variance drawn from the
// operating system's randomness; then the weight. Refuses non-finite scalars and a wrong count.
Result<std::vector<uint64_t>> encode_input(const InputSpec& s, const std::vector<float>& coeffs, uint64_t examples);

// The decoded round coefficients from the sum of the inputs: (Σ weighted scalar) / 2^scale_bits / D, where
// D is `denominator` when > 0 (the public W of a private task) and otherwise the summed weight. Refuses a
// summed weight of 0 or above n · W_max, and a scalar sum beyond weight · B · 2^scale_bits (+ rounding and
// noise): a sum that cannot come from n honest, clipped inputs.
Result<std::vector<float>> decode_mean(const InputSpec& s, const std::vector<uint64_t>& sum, uint32_t n, double denominator);

// Two's-complement reading of one coordinate.
inline int64_t as_signed(uint64_t v) { return static_cast<int64_t>(v); }

}  // namespace pocketllm::secagg
