// Differential-privacy accounting for the sampled Gaussian mechanism (docs/privacy.md): Rényi DP of one
// round (each device included independently with probability q, its contribution clipped to L2 norm C,
// Gaussian noise of standard deviation sigma·C added to the sum), composed over rounds by adding RDP,
// converted to (epsilon, delta). Written from Mironov 2017 (RDP, composition, the classic conversion),
// Mironov, Talwar, Zhang 2019 (RDP of the sampled Gaussian for integer and fractional orders) and Balle
// et al. 2020 / Canonne, Kamath, Steinke 2020 (the improved conversion). Pure and deterministic: the
// server, the CLI and the simulator all compute the same numbers. No dependencies.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pocketllm::privacy {

// RDP of order alpha > 1 of one application of the sampled Gaussian mechanism with sampling rate
// q in [0, 1] and noise multiplier sigma > 0 (noise standard deviation / L2 sensitivity).
// Integer orders use the exact binomial expansion; fractional ones the two-sided series of Mironov,
// Talwar, Zhang (section 3.3). Returns +infinity where the divergence is infinite (sigma = 0 with q > 0).
double rdp_sampled_gaussian(double q, double sigma, double alpha);

// The orders accounted over: 1.1 … 10.9 in steps of 0.1, 11 … 63, 128, 256, 512.
const std::vector<double>& default_orders();

enum class Conversion {
  kClassic,   // epsilon = RDP(alpha) + log(1/delta) / (alpha - 1)                      (Mironov 2017, Prop. 3)
  kImproved,  // epsilon = RDP(alpha) + log((alpha-1)/alpha) - (log delta + log alpha) / (alpha - 1)
              //                                                     (Balle et al. 2020, Thm 21; Canonne et al. 2020)
};

struct Spent {
  double epsilon = 0;
  double order = 0;  // the order that gave the smallest epsilon
};

// (epsilon, delta) from per-order RDP values (already composed), minimised over the orders.
Spent epsilon_from_rdp(const std::vector<double>& orders, const std::vector<double>& rdp, double delta,
                       Conversion conversion = Conversion::kImproved);

// The floor of noise_for_epsilon's search, and the most rounds max_rounds counts by default.
constexpr double kMinNoiseMultiplier = 1e-3;
constexpr uint64_t kRoundsLimit = 1000000;

// The sampled Gaussian mechanism with fixed (q, sigma): its per-round RDP is computed once (the costly
// part), so epsilon after any number of rounds and the rounds that fit a budget cost only the conversion
// — what a server answering every status request needs.
class RoundAccountant {
 public:
  RoundAccountant(double q, double sigma, const std::vector<double>& orders = default_orders());
  Spent epsilon(uint64_t steps, double delta, Conversion conversion = Conversion::kImproved) const;
  // The largest steps <= limit with epsilon(steps, delta) <= target_epsilon (0 when not even one).
  uint64_t max_rounds(double target_epsilon, double delta, uint64_t limit = kRoundsLimit) const;

 private:
  std::vector<double> orders_, rdp_;  // RDP of one round at each order
};

// epsilon after `steps` rounds of the sampled Gaussian mechanism (q, sigma) at delta.
Spent epsilon_spent(double q, double sigma, uint64_t steps, double delta, Conversion conversion = Conversion::kImproved,
                    const std::vector<double>& orders = default_orders());

// The smallest noise multiplier (to 1e-4 relative) whose epsilon after `steps` rounds at delta is at most
// target_epsilon; 0 when steps is 0; kMinNoiseMultiplier when that already meets the target (smaller ones
// may too: the search stops there). Throws std::invalid_argument on parameters outside their ranges.
double noise_for_epsilon(double target_epsilon, double q, uint64_t steps, double delta,
                         Conversion conversion = Conversion::kImproved);

// The number of rounds that fit in an (epsilon, delta) budget: the largest steps with
// epsilon_spent(q, sigma, steps, delta) <= target_epsilon (0 when not even one does).
uint64_t max_rounds(double target_epsilon, double q, double sigma, double delta, uint64_t limit = kRoundsLimit);

// Empty when the parameters are usable, else why not (for clear configuration errors).
std::string check_parameters(double q, double sigma, double delta);

}  // namespace pocketllm::privacy
