// Statistical sanity of z. Bounds are about five standard errors of each estimate, so a correct
// generator essentially never fails them, while a broken one (a key or counter ignored, a word reused,
// a wrong polynomial) fails by a wide margin.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <vector>

#include "pocketllm/common/perturbation.h"

using namespace pocketllm;

namespace {

constexpr size_t kN = size_t{1} << 20;

std::vector<double> z_of(Distribution dist, uint64_t seed, const char* name, uint64_t start = 0, size_t n = kN) {
  std::vector<float> f(n);
  generate_z(dist, seed, tensor_tag(name), start, n, f.data());
  return std::vector<double>(f.begin(), f.end());
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

// Pearson correlation of a[i] and b[i + lag].
double correlation(const std::vector<double>& a, const std::vector<double>& b, size_t lag = 0) {
  const size_t n = std::min(a.size(), b.size() - lag);
  double ma = 0, mb = 0;
  for (size_t i = 0; i < n; ++i) {
    ma += a[i];
    mb += b[i + lag];
  }
  ma /= static_cast<double>(n);
  mb /= static_cast<double>(n);
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < n; ++i) {
    const double x = a[i] - ma, y = b[i + lag] - mb;
    sab += x * y;
    saa += x * x;
    sbb += y * y;
  }
  return sab / std::sqrt(saa * sbb);
}

const double kFiveSigma = 5.0 / std::sqrt(static_cast<double>(kN));

void check_independence(Distribution dist) {
  const auto a = z_of(dist, 1234, "model.layers.0.mlp.up_proj.weight");
  SECTION("neighbouring elements and blocks are uncorrelated") {
    for (size_t lag : {1, 2, 3, 4, 31, 32, 64, 96, 127, 128, 256}) {
      INFO("lag " << lag);
      CHECK(std::fabs(correlation(a, a, lag)) < kFiveSigma * 1.01);
    }
  }
  SECTION("neighbouring tensors are uncorrelated") {
    const auto b = z_of(dist, 1234, "model.layers.0.mlp.down_proj.weight");
    const auto c = z_of(dist, 1234, "model.layers.1.mlp.up_proj.weight");
    CHECK(std::fabs(correlation(a, b)) < kFiveSigma);
    CHECK(std::fabs(correlation(a, c)) < kFiveSigma);
  }
  SECTION("neighbouring seeds are uncorrelated") {
    const auto b = z_of(dist, 1235, "model.layers.0.mlp.up_proj.weight");
    const auto c = z_of(dist, 1234 + (uint64_t{1} << 32), "model.layers.0.mlp.up_proj.weight");
    CHECK(std::fabs(correlation(a, b)) < kFiveSigma);
    CHECK(std::fabs(correlation(a, c)) < kFiveSigma);
  }
  SECTION("far blocks (across the 2^32 block boundary) are uncorrelated with near ones") {
    const auto far = z_of(dist, 1234, "model.layers.0.mlp.up_proj.weight", uint64_t{1} << 40);
    CHECK(std::fabs(correlation(a, far)) < kFiveSigma);
  }
}

}  // namespace

TEST_CASE("Rademacher z is +-1 with mean 0 and independent bits", "[core][statistics]") {
  const auto z = z_of(Distribution::kRademacher, 77, "model.embed_tokens.weight");
  size_t not_pm1 = 0;
  for (double x : z) not_pm1 += (x != 1.0 && x != -1.0);
  CHECK(not_pm1 == 0);
  CHECK(std::fabs(mean(z)) < kFiveSigma);
  // Every bit position of the 128-element block is balanced (catches a stuck or reused word).
  const size_t blocks = kN / 128;
  const double sigma_pos = 5.0 / std::sqrt(static_cast<double>(blocks));
  for (size_t j = 0; j < 128; ++j) {
    double s = 0;
    for (size_t b = 0; b < blocks; ++b) s += z[b * 128 + j];
    INFO("bit position " << j);
    CHECK(std::fabs(s / static_cast<double>(blocks)) < sigma_pos);
  }
  check_independence(Distribution::kRademacher);
}

TEST_CASE("Gaussian z has the moments and tails of N(0,1)", "[core][statistics]") {
  const auto z = z_of(Distribution::kGaussian, 77, "model.embed_tokens.weight");
  const double n = static_cast<double>(z.size());
  double m1 = 0, m2 = 0, m3 = 0, m4 = 0;
  size_t non_finite = 0;
  for (double x : z) {
    non_finite += !std::isfinite(x);
    m1 += x;
    m2 += x * x;
    m3 += x * x * x;
    m4 += x * x * x * x;
  }
  CHECK(non_finite == 0);
  m1 /= n;
  m2 /= n;
  m3 /= n;
  m4 /= n;
  CHECK(std::fabs(m1) < 5.0 / std::sqrt(n));
  CHECK(std::fabs(m2 - 1.0) < 5.0 * std::sqrt(2.0 / n));
  CHECK(std::fabs(m3) < 5.0 * std::sqrt(15.0 / n));
  CHECK(std::fabs(m4 - 3.0) < 5.0 * std::sqrt(96.0 / n));

  // Kolmogorov–Smirnov distance to the normal CDF: the 1e-6 critical value is about 2.7/sqrt(n).
  std::vector<double> sorted = z;
  std::sort(sorted.begin(), sorted.end());
  double d = 0;
  for (size_t i = 0; i < sorted.size(); ++i) {
    const double cdf = 0.5 * std::erfc(-sorted[i] / std::sqrt(2.0));
    d = std::max({d, std::fabs(cdf - static_cast<double>(i) / n), std::fabs(cdf - static_cast<double>(i + 1) / n)});
  }
  CHECK(d < 2.7 / std::sqrt(n));

  // Squares of the two outputs of one Box–Muller pair are independent (a wrong sin/cos would not be).
  std::vector<double> even_sq, odd_sq;
  for (size_t i = 0; i + 1 < z.size(); i += 2) {
    even_sq.push_back(z[i] * z[i]);
    odd_sq.push_back(z[i + 1] * z[i + 1]);
  }
  CHECK(std::fabs(correlation(even_sq, odd_sq)) < 5.0 / std::sqrt(static_cast<double>(even_sq.size())));
  check_independence(Distribution::kGaussian);
}
