#include "pocketllm/server/aggregation.h"

#include <algorithm>
#include <cmath>

namespace pocketllm::server {

const char* strategy_name(Strategy s) {
  switch (s) {
    case Strategy::kWeightedMean: return "weighted_mean";
    case Strategy::kMedian: return "median";
    case Strategy::kTrimmedMean: return "trimmed_mean";
  }
  return "?";
}

bool parse_strategy(const std::string& t, Strategy* out) {
  if (t == "weighted_mean") *out = Strategy::kWeightedMean;
  else if (t == "median") *out = Strategy::kMedian;
  else if (t == "trimmed_mean") *out = Strategy::kTrimmedMean;
  else return false;
  return true;
}

namespace {

double median_of_sorted(const std::vector<double>& v) {
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Clips each scalar (values sorted by scalar): to the fixed bound, or to median ± scale × (MAD + |median|).
void clip_values(std::vector<std::pair<double, double>>* values, const AggregationOptions& o) {
  if (o.clip > 0) {
    for (auto& [c, w] : *values) c = std::max<double>(-o.clip, std::min<double>(o.clip, c));
    return;
  }
  std::vector<double> v;
  for (const auto& [c, w] : *values) v.push_back(c);
  const double center = median_of_sorted(v);
  for (double& x : v) x = std::fabs(x - center);
  std::sort(v.begin(), v.end());
  // MAD alone is 0 when most values tie (identical devices, skipped steps' zeros); |median| keeps the
  // bound on the scale of the values themselves.
  const double bound = o.clip_scale * (median_of_sorted(v) + std::fabs(center));
  for (auto& [c, w] : *values) c = std::max(center - bound, std::min(center + bound, c));
  std::sort(values->begin(), values->end());  // clipping keeps the order; ties are re-sorted by weight
}

// One seed's coefficient from its clipped, sorted (scalar, weight) pairs.
Result<double> combine(const std::vector<std::pair<double, double>>& values, const AggregationOptions& o) {
  const size_t n = values.size();
  if (o.strategy == Strategy::kWeightedMean) {
    double num = 0, den = 0;
    for (const auto& [c, w] : values) {
      num += c * w;
      den += w;
    }
    if (den <= 0) return invalid_argument("aggregation: the submissions' total weight is zero");
    return num / den;
  }
  if (o.strategy == Strategy::kMedian) return n % 2 ? values[n / 2].first : 0.5 * (values[n / 2 - 1].first + values[n / 2].first);
  // Trimmed mean: at least one value from each end once there are three.
  size_t cut = static_cast<size_t>(std::floor(o.trim_fraction * static_cast<double>(n)));
  if (n >= 3) cut = std::max<size_t>(cut, 1);
  double sum = 0;
  for (size_t i = cut; i < n - cut; ++i) sum += values[i].first;
  return sum / static_cast<double>(n - 2 * cut);
}

}  // namespace

Result<std::vector<float>> aggregate(const std::vector<Submission>& subs, size_t tau, const AggregationOptions& o) {
  if (subs.empty() || subs.size() < o.min_submissions)
    return invalid_argument("aggregation needs at least " + std::to_string(std::max<size_t>(1, o.min_submissions)) +
                            " submissions, got " + std::to_string(subs.size()));
  if (o.trim_fraction < 0 || o.trim_fraction >= 0.5) return invalid_argument("trim fraction must be in [0, 0.5)");
  if (!(o.clip >= 0)) return invalid_argument("clip must be >= 0");
  if (!(o.clip_scale >= 1)) return invalid_argument("clip_scale must be >= 1");
  for (const auto& s : subs) {
    if (s.coeffs.size() != tau)
      return invalid_argument("device " + s.device + " submitted " + std::to_string(s.coeffs.size()) + " scalars, expected " +
                              std::to_string(tau));
    for (float c : s.coeffs)
      if (!std::isfinite(c)) return invalid_argument("device " + s.device + " submitted a non-finite scalar");
    if (!(s.weight >= 0) || !std::isfinite(s.weight)) return invalid_argument("device " + s.device + " has an invalid weight");
  }
  std::vector<float> out(tau);
  std::vector<std::pair<double, double>> values;  // (scalar, weight)
  for (size_t k = 0; k < tau; ++k) {
    values.clear();
    for (const auto& s : subs) {
      const uint64_t examples = o.max_examples > 0 ? std::min(s.examples, o.max_examples) : s.examples;
      values.emplace_back(s.coeffs[k], static_cast<double>(examples) * s.weight);
    }
    std::sort(values.begin(), values.end());  // order-independent sums: arrival order never matters
    clip_values(&values, o);
    auto r = combine(values, o);
    if (!r) return r.status();
    out[k] = static_cast<float>(r.value());
  }
  return out;
}

}  // namespace pocketllm::server
