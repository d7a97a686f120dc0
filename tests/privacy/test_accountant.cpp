// The differential-privacy accountant against (a) an independent numerical integration and (b) epsilon
// figures published by others for the same mechanism, plus its own invariants.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "pocketllm/privacy/accountant.h"

using namespace pocketllm::privacy;

TEST_CASE("privacy: RDP of the sampled Gaussian equals an independent float64 numerical integration to 1e-6", "[privacy]") {
  // tests/privacy/rdp_by_integration.py integrates E_mu0[(mu1/mu0)^alpha] with Simpson's rule: neither the
  // binomial expansion (integer orders) nor the erfc series (fractional orders) of the accountant.
  const std::string cmd = std::string("python3 ") + POCKETLLM_TESTS_DIR + "/privacy/rdp_by_integration.py";
  std::FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char line[512];
  int cases = 0, fractional = 0;
  double worst = 0;
  while (std::fgets(line, sizeof line, p)) {
    const auto j = nlohmann::json::parse(line);
    const double q = j["q"], sigma = j["sigma"], alpha = j["alpha"], want = j["rdp"];
    const double got = rdp_sampled_gaussian(q, sigma, alpha);
    INFO("q " << q << " sigma " << sigma << " alpha " << alpha << ": accountant " << got << ", integration " << want);
    REQUIRE(std::isfinite(got));
    const double rel = std::fabs(got - want) / std::fabs(want);
    CHECK(rel < 1e-6);
    worst = std::max(worst, rel);
    ++cases;
    if (alpha != std::floor(alpha)) ++fractional;
  }
  REQUIRE(::pclose(p) == 0);
  CHECK(cases >= 100);
  CHECK(fractional >= 30);
  WARN("worst relative difference over " << cases << " cases: " << worst);
}

TEST_CASE("privacy: published epsilon figures are reproduced within 1 %", "[privacy]") {
  struct Published {
    const char* source;
    double q, sigma;
    uint64_t steps;
    double delta, epsilon;
    Conversion conversion;
    std::vector<double> orders;
  };
  std::vector<double> integer_orders;
  for (int a = 2; a <= 33; ++a) integer_orders.push_back(a);
  // docs/privacy.md cites each: Abadi et al. 2016 (moments accountant, integer moments up to 32, the
  // classic tail bound), and the three rows of TensorFlow Privacy's MNIST tutorial table (RDP, classic
  // conversion): n = 60000, batch 256, steps = epochs * 60000 // 256.
  const std::vector<Published> figures = {
      {"Abadi et al. 2016, section 3.1", 0.01, 4.0, 10000, 1e-5, 1.26, Conversion::kClassic, integer_orders},
      {"TF Privacy tutorial: sigma 1.12, 60 epochs", 256.0 / 60000, 1.12, 60 * 60000 / 256, 1e-5, 2.92, Conversion::kClassic, default_orders()},
      {"TF Privacy tutorial: sigma 0.6, 30 epochs", 256.0 / 60000, 0.6, 30 * 60000 / 256, 1e-5, 9.74, Conversion::kClassic, default_orders()},
      {"TF Privacy tutorial: sigma 1.2, 10 epochs", 256.0 / 60000, 1.2, 10 * 60000 / 256, 1e-5, 1.20, Conversion::kClassic, default_orders()},
  };
  for (const auto& f : figures) {
    const Spent s = epsilon_spent(f.q, f.sigma, f.steps, f.delta, f.conversion, f.orders);
    INFO(f.source << ": published " << f.epsilon << ", accountant " << s.epsilon << " at order " << s.order);
    CHECK(std::fabs(s.epsilon - f.epsilon) / f.epsilon < 0.01);
    // The improved conversion is never looser than the classic one.
    CHECK(epsilon_spent(f.q, f.sigma, f.steps, f.delta, Conversion::kImproved, f.orders).epsilon <= s.epsilon);
  }
}

TEST_CASE("privacy: invariants of the accountant", "[privacy]") {
  // Without sampling it is the Gaussian mechanism: alpha / (2 sigma^2).
  CHECK(rdp_sampled_gaussian(1.0, 2.0, 5.0) == Approx(5.0 / 8.0));
  CHECK(rdp_sampled_gaussian(0.0, 2.0, 5.0) == 0.0);
  CHECK(std::isinf(rdp_sampled_gaussian(0.1, 0.0, 5.0)));
  // Monotone: more noise, fewer rounds or a smaller sampling rate never cost more.
  const double base = epsilon_spent(0.05, 1.0, 100, 1e-5).epsilon;
  CHECK(epsilon_spent(0.05, 1.5, 100, 1e-5).epsilon < base);
  CHECK(epsilon_spent(0.05, 1.0, 50, 1e-5).epsilon < base);
  CHECK(epsilon_spent(0.02, 1.0, 100, 1e-5).epsilon < base);
  CHECK(epsilon_spent(0.05, 1.0, 100, 1e-6).epsilon > base);
  CHECK(epsilon_spent(0.05, 1.0, 0, 1e-5).epsilon == 0.0);
  // Integer and fractional orders agree where they meet (the two formulas on either side of alpha = 3).
  CHECK(rdp_sampled_gaussian(0.05, 1.0, 3.0) == Approx(rdp_sampled_gaussian(0.05, 1.0, 3.0 + 1e-9)).epsilon(1e-6));
  // noise_for_epsilon inverts epsilon_spent; max_rounds is the last round within the budget.
  const double sigma = noise_for_epsilon(3.0, 0.05, 200, 1e-5);
  CHECK(epsilon_spent(0.05, sigma, 200, 1e-5).epsilon <= 3.0);
  CHECK(epsilon_spent(0.05, sigma * 0.999, 200, 1e-5).epsilon > 3.0);
  const uint64_t rounds = max_rounds(3.0, 0.05, sigma, 1e-5);
  CHECK(rounds >= 200);
  CHECK(epsilon_spent(0.05, sigma, rounds, 1e-5).epsilon <= 3.0);
  CHECK(epsilon_spent(0.05, sigma, rounds + 1, 1e-5).epsilon > 3.0);
  CHECK_FALSE(check_parameters(0, 1, 1e-5).empty());
  CHECK_FALSE(check_parameters(0.1, -1, 1e-5).empty());
  CHECK_FALSE(check_parameters(0.1, 1, 1.5).empty());
  CHECK(check_parameters(0.1, 1, 1e-5).empty());
  CHECK_THROWS_AS(noise_for_epsilon(-1, 0.1, 10, 1e-5), std::invalid_argument);
  // Generous budgets whose noise is below 1 (the search goes down by halves) still invert exactly; one the
  // search's floor already meets gets the floor, never a value below it.
  for (double target : {20.0, 200.0}) {
    const double s = noise_for_epsilon(target, 1.0, 1, 1e-5);
    CHECK(s < 0.5);
    CHECK(s > kMinNoiseMultiplier);
    CHECK(epsilon_spent(1.0, s, 1, 1e-5).epsilon <= target);
    CHECK(epsilon_spent(1.0, s * 0.999, 1, 1e-5).epsilon > target);
  }
  CHECK(noise_for_epsilon(1e12, 0.1, 10, 1e-5) == kMinNoiseMultiplier);
  CHECK(epsilon_spent(0.1, kMinNoiseMultiplier, 10, 1e-5).epsilon <= 1e12);
}
