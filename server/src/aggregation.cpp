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

struct Bounds {
  double lo, hi;
};

// The clip range of one step's scalars (sorted): the fixed bound, or median ± scale × (MAD + |median|).
Bounds clip_bounds(const std::vector<double>& sorted, const AggregationOptions& o) {
  if (o.clip > 0) return {-static_cast<double>(o.clip), static_cast<double>(o.clip)};
  const double center = median_of_sorted(sorted);
  std::vector<double> dev;
  dev.reserve(sorted.size());
  for (double x : sorted) dev.push_back(std::fabs(x - center));
  std::sort(dev.begin(), dev.end());
  // MAD alone is 0 when most values tie (identical devices, skipped steps' zeros); |median| keeps the
  // bound on the scale of the values themselves.
  const double bound = o.clip_scale * (median_of_sorted(dev) + std::fabs(center));
  return {center - bound, center + bound};
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

Result<std::vector<std::vector<float>>> aggregate_groups(const std::vector<Submission>& subs, const std::vector<uint32_t>& group_of,
                                                         uint32_t groups, size_t tau, const AggregationOptions& o) {
  if (subs.empty() || subs.size() < o.min_submissions)
    return invalid_argument("aggregation needs at least " + std::to_string(std::max<size_t>(1, o.min_submissions)) +
                            " submissions, got " + std::to_string(subs.size()));
  if (o.trim_fraction < 0 || o.trim_fraction >= 0.5) return invalid_argument("trim fraction must be in [0, 0.5)");
  if (!(o.clip >= 0)) return invalid_argument("clip must be >= 0");
  if (!(o.clip_scale >= 1)) return invalid_argument("clip_scale must be >= 1");
  if (groups == 0 || group_of.size() != subs.size()) return invalid_argument("aggregation: every submission needs a seed group");
  for (size_t i = 0; i < subs.size(); ++i) {
    const Submission& s = subs[i];
    if (group_of[i] >= groups) return invalid_argument("device " + s.device + " is in no seed group of the round");
    if (s.coeffs.size() != tau)
      return invalid_argument("device " + s.device + " submitted " + std::to_string(s.coeffs.size()) + " scalars, expected " +
                              std::to_string(tau));
    for (float c : s.coeffs)
      if (!std::isfinite(c)) return invalid_argument("device " + s.device + " submitted a non-finite scalar");
    if (!(s.weight >= 0) || !std::isfinite(s.weight)) return invalid_argument("device " + s.device + " has an invalid weight");
  }
  std::vector<std::vector<float>> out(groups);
  std::vector<double> step;                                    // every submission's scalar of one step, sorted
  std::vector<std::vector<std::pair<double, double>>> values(groups);  // per group: (clipped scalar, weight)
  for (size_t k = 0; k < tau; ++k) {
    step.clear();
    for (const auto& s : subs) step.push_back(s.coeffs[k]);
    std::sort(step.begin(), step.end());
    const Bounds b = clip_bounds(step, o);
    for (auto& v : values) v.clear();
    for (size_t i = 0; i < subs.size(); ++i) {
      const Submission& s = subs[i];
      const uint64_t examples = o.max_examples > 0 ? std::min(s.examples, o.max_examples) : s.examples;
      values[group_of[i]].emplace_back(std::max(b.lo, std::min(b.hi, static_cast<double>(s.coeffs[k]))),
                                       static_cast<double>(examples) * s.weight);
    }
    for (uint32_t g = 0; g < groups; ++g) {
      if (values[g].empty()) continue;
      std::sort(values[g].begin(), values[g].end());  // order-independent sums: arrival order never matters
      auto r = combine(values[g], o);
      if (!r) return r.status();
      out[g].push_back(static_cast<float>(r.value()));
    }
  }
  return out;
}

Result<std::vector<float>> aggregate(const std::vector<Submission>& subs, size_t tau, const AggregationOptions& o) {
  auto r = aggregate_groups(subs, std::vector<uint32_t>(subs.size(), 0), 1, tau, o);
  if (!r) return r.status();
  return std::move(r.value()[0]);
}

}  // namespace pocketllm::server
