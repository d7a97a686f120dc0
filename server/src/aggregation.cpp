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

Result<std::vector<float>> aggregate(const std::vector<Submission>& subs, size_t tau, const AggregationOptions& o) {
  if (subs.empty() || subs.size() < o.min_submissions)
    return invalid_argument("aggregation needs at least " + std::to_string(std::max<size_t>(1, o.min_submissions)) +
                            " submissions, got " + std::to_string(subs.size()));
  if (o.trim_fraction < 0 || o.trim_fraction >= 0.5) return invalid_argument("trim fraction must be in [0, 0.5)");
  if (!(o.clip >= 0)) return invalid_argument("clip must be >= 0");
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
      double c = s.coeffs[k];
      if (o.clip > 0) c = std::max<double>(-o.clip, std::min<double>(o.clip, c));
      values.emplace_back(c, static_cast<double>(s.examples) * s.weight);
    }
    double result = 0;
    std::sort(values.begin(), values.end());  // order-independent sums: arrival order never matters
    if (o.strategy == Strategy::kWeightedMean) {
      double num = 0, den = 0;
      for (const auto& [c, w] : values) {
        num += c * w;
        den += w;
      }
      if (den <= 0) return invalid_argument("aggregation: the submissions' total weight is zero");
      result = num / den;
    } else {
      const size_t n = values.size();
      if (o.strategy == Strategy::kMedian) {
        result = n % 2 ? values[n / 2].first : 0.5 * (values[n / 2 - 1].first + values[n / 2].first);
      } else {
        const size_t cut = static_cast<size_t>(std::floor(o.trim_fraction * static_cast<double>(n)));
        double sum = 0;
        for (size_t i = cut; i < n - cut; ++i) sum += values[i].first;
        result = sum / static_cast<double>(n - 2 * cut);
      }
    }
    out[k] = static_cast<float>(result);
  }
  return out;
}

}  // namespace pocketllm::server
