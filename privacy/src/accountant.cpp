#include "pocketllm/privacy/accountant.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace pocketllm::privacy {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// log(exp(a) + exp(b)) without overflow.
double log_add(double a, double b) {
  if (a == -kInf) return b;
  if (b == -kInf) return a;
  const double hi = std::max(a, b), lo = std::min(a, b);
  return hi + std::log1p(std::exp(lo - hi));
}

// log(exp(a) - exp(b)) for a >= b; NaN when a < b (a cancellation the series should never produce).
double log_sub(double a, double b) {
  if (b == -kInf) return a;
  if (a < b) return std::nan("");
  if (a == b) return -kInf;
  return a + std::log(-std::expm1(b - a));
}

// log(erfc(x)), accurate where erfc(x) underflows (an asymptotic series for large x).
double log_erfc(double x) {
  if (x < 10.0) return std::log(std::erfc(x));
  const double x2 = x * x, inv = 1.0 / x2;
  const double series = 1.0 - inv / 2.0 + 3.0 * inv * inv / 4.0 - 15.0 * inv * inv * inv / 8.0 + 105.0 * inv * inv * inv * inv / 16.0;
  return -x2 - std::log(x) - 0.5 * std::log(M_PI) + std::log(series);
}

double log_binomial(double n, double k) { return std::lgamma(n + 1) - std::lgamma(k + 1) - std::lgamma(n - k + 1); }

// log A_alpha for integer alpha: A = sum_k C(alpha,k) (1-q)^(alpha-k) q^k exp((k^2 - k) / (2 sigma^2)).
double log_a_integer(double q, double sigma, int alpha) {
  double log_a = -kInf;
  for (int k = 0; k <= alpha; ++k) {
    const double t = log_binomial(alpha, k) + k * std::log(q) + (alpha - k) * std::log1p(-q) +
                     (static_cast<double>(k) * k - k) / (2.0 * sigma * sigma);
    log_a = log_add(log_a, t);
  }
  return log_a;
}

// log A_alpha for fractional alpha: the two series of Mironov, Talwar, Zhang (2019), section 3.3, with
// the generalised binomial coefficient (its sign alternates once i > alpha).
double log_a_fractional(double q, double sigma, double alpha) {
  double a0 = -kInf, a1 = -kInf;
  const double z0 = sigma * sigma * std::log(1.0 / q - 1.0) + 0.5;
  double log_coef = 0.0;  // log |C(alpha, i)|, updated as i grows
  double sign = 1.0;
  for (int i = 0; i < 100000; ++i) {
    if (i > 0) {
      const double ratio = (alpha - (i - 1)) / i;  // C(alpha,i) = C(alpha,i-1) (alpha-i+1)/i
      if (ratio == 0) return log_add(a0, a1);
      if (ratio < 0) sign = -sign;
      log_coef += std::log(std::fabs(ratio));
    }
    const double j = alpha - i;
    const double log_t0 = log_coef + i * std::log(q) + j * std::log1p(-q);
    const double log_t1 = log_coef + j * std::log(q) + i * std::log1p(-q);
    const double log_e0 = std::log(0.5) + log_erfc((i - z0) / (std::sqrt(2.0) * sigma));
    const double log_e1 = std::log(0.5) + log_erfc((z0 - j) / (std::sqrt(2.0) * sigma));
    const double log_s0 = log_t0 + (static_cast<double>(i) * i - i) / (2.0 * sigma * sigma) + log_e0;
    const double log_s1 = log_t1 + (j * j - j) / (2.0 * sigma * sigma) + log_e1;
    if (sign > 0) {
      a0 = log_add(a0, log_s0);
      a1 = log_add(a1, log_s1);
    } else {
      a0 = log_sub(a0, log_s0);
      a1 = log_sub(a1, log_s1);
    }
    if (std::isnan(a0) || std::isnan(a1)) return std::nan("");
    if (std::max(log_s0, log_s1) < -30) return log_add(a0, a1);
  }
  return std::nan("");  // did not converge
}

}  // namespace

double rdp_sampled_gaussian(double q, double sigma, double alpha) {
  if (!(alpha > 1)) throw std::invalid_argument("RDP order must be > 1");
  if (q == 0) return 0;
  if (!(sigma > 0)) return kInf;
  if (q == 1.0) return alpha / (2.0 * sigma * sigma);  // the plain Gaussian mechanism
  if (std::isinf(alpha)) return kInf;
  const double log_a = alpha == std::floor(alpha) && alpha < 1e6 ? log_a_integer(q, sigma, static_cast<int>(alpha))
                                                                 : log_a_fractional(q, sigma, alpha);
  return log_a / (alpha - 1.0);
}

const std::vector<double>& default_orders() {
  static const std::vector<double> orders = [] {
    std::vector<double> o;
    for (int x = 11; x <= 109; ++x) o.push_back(x / 10.0);
    for (int a = 11; a <= 63; ++a) o.push_back(a);
    o.push_back(128);
    o.push_back(256);
    o.push_back(512);
    return o;
  }();
  return orders;
}

Spent epsilon_from_rdp(const std::vector<double>& orders, const std::vector<double>& rdp, double delta, Conversion conversion) {
  if (orders.size() != rdp.size() || orders.empty()) throw std::invalid_argument("orders and RDP values must pair up");
  if (!(delta > 0 && delta < 1)) throw std::invalid_argument("delta must be in (0, 1)");
  Spent best{kInf, 0};
  for (size_t i = 0; i < orders.size(); ++i) {
    const double a = orders[i], r = rdp[i];
    if (!(a > 1) || std::isnan(r) || r < 0) continue;
    double eps = conversion == Conversion::kClassic
                     ? r + std::log(1.0 / delta) / (a - 1.0)
                     : r + std::log1p(-1.0 / a) - (std::log(delta) + std::log(a)) / (a - 1.0);
    eps = std::max(eps, 0.0);
    if (eps < best.epsilon) best = {eps, a};
  }
  return best;
}

RoundAccountant::RoundAccountant(double q, double sigma, const std::vector<double>& orders) : orders_(orders), rdp_(orders.size()) {
  for (size_t i = 0; i < orders_.size(); ++i) rdp_[i] = rdp_sampled_gaussian(q, sigma, orders_[i]);
}

Spent RoundAccountant::epsilon(uint64_t steps, double delta, Conversion conversion) const {
  if (steps == 0) return {0, 0};
  std::vector<double> total(rdp_.size());
  for (size_t i = 0; i < rdp_.size(); ++i) total[i] = static_cast<double>(steps) * rdp_[i];
  return epsilon_from_rdp(orders_, total, delta, conversion);
}

uint64_t RoundAccountant::max_rounds(double target_epsilon, double delta, uint64_t limit) const {
  // epsilon grows with the number of rounds (RDP adds up): bisect on it.
  uint64_t lo = 0, hi = limit;
  if (epsilon(hi, delta).epsilon <= target_epsilon) return hi;
  while (hi - lo > 1) {
    const uint64_t mid = lo + (hi - lo) / 2;
    (epsilon(mid, delta).epsilon <= target_epsilon ? lo : hi) = mid;
  }
  return lo;
}

Spent epsilon_spent(double q, double sigma, uint64_t steps, double delta, Conversion conversion, const std::vector<double>& orders) {
  return RoundAccountant(q, sigma, orders).epsilon(steps, delta, conversion);
}

std::string check_parameters(double q, double sigma, double delta) {
  if (!(q > 0 && q <= 1)) return "the sampling rate must be in (0, 1]";
  if (!(sigma > 0 && sigma <= 1e4) || !std::isfinite(sigma)) return "the noise multiplier must be in (0, 10000]";
  if (!(delta > 0 && delta < 1)) return "delta must be in (0, 1)";
  return "";
}

double noise_for_epsilon(double target_epsilon, double q, uint64_t steps, double delta, Conversion conversion) {
  if (const std::string why = check_parameters(q, 1.0, delta); !why.empty()) throw std::invalid_argument(why);
  if (!(target_epsilon > 0) || !std::isfinite(target_epsilon)) throw std::invalid_argument("the target epsilon must be positive");
  if (steps == 0) return 0;
  double hi = 1.0;
  while (epsilon_spent(q, hi, steps, delta, conversion).epsilon > target_epsilon) {
    hi *= 2;
    if (hi > 1e4) throw std::invalid_argument("no noise multiplier up to 10000 reaches that epsilon");
  }
  // Down by halves to a noise multiplier that spends too much (lo), keeping the last one within (hi);
  // the search stops at its floor: a target the floor already meets gets the floor.
  double lo = hi / 2;
  while (epsilon_spent(q, lo, steps, delta, conversion).epsilon <= target_epsilon) {
    if (lo <= kMinNoiseMultiplier) return kMinNoiseMultiplier;
    hi = lo;
    lo = std::max(kMinNoiseMultiplier, lo / 2);
  }
  while ((hi - lo) > 1e-4 * hi) {
    const double mid = 0.5 * (lo + hi);
    (epsilon_spent(q, mid, steps, delta, conversion).epsilon <= target_epsilon ? hi : lo) = mid;
  }
  return hi;
}

uint64_t max_rounds(double target_epsilon, double q, double sigma, double delta, uint64_t limit) {
  return RoundAccountant(q, sigma).max_rounds(target_epsilon, delta, limit);
}

}  // namespace pocketllm::privacy
