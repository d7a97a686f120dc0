#include "pocketllm/sim/partition.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "pocketllm/common/seeds.h"

namespace pocketllm {
namespace {

// A platform-independent stream of uniforms in (0, 1) from SplitMix64.
struct Uniform {
  uint64_t state;
  double next() {
    state += 0x9e3779b97f4a7c15ull;
    return (static_cast<double>(splitmix64(state) >> 11) + 0.5) / 9007199254740992.0;
  }
};

// Gamma(shape, 1) by Marsaglia–Tsang (with the shape < 1 boost), on the stream above.
double gamma_sample(double shape, Uniform& u) {
  if (shape < 1.0) return gamma_sample(shape + 1.0, u) * std::pow(u.next(), 1.0 / shape);
  const double d = shape - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    const double n = std::sqrt(-2.0 * std::log(u.next())) * std::cos(2.0 * M_PI * u.next());
    const double v = std::pow(1.0 + c * n, 3);
    if (v <= 0) continue;
    const double x = u.next();
    if (std::log(x) < 0.5 * n * n + d - d * v + d * std::log(v)) return d * v;
  }
}

}  // namespace

Result<PartitionSpec> parse_partition(const std::string& text, uint64_t seed) {
  PartitionSpec p;
  p.seed = seed;
  if (text == "iid" || text == "contiguous") {
    p.mode = text;
    return p;
  }
  if (text.rfind("dirichlet:", 0) == 0) {
    char* end = nullptr;
    p.alpha = std::strtod(text.c_str() + 10, &end);
    if (*end != '\0' || !(p.alpha > 0) || !std::isfinite(p.alpha)) return invalid_argument("dirichlet alpha must be a positive number: " + text);
    p.mode = "dirichlet";
    return p;
  }
  return invalid_argument("partition must be iid, contiguous or dirichlet:ALPHA, got " + text);
}

Result<std::vector<std::vector<size_t>>> partition_examples(const std::vector<size_t>& examples, const std::vector<int>& labels,
                                                            int n, const PartitionSpec& spec) {
  if (n < 1) return invalid_argument("need at least one device");
  std::vector<std::vector<size_t>> shards(static_cast<size_t>(n));
  if (spec.mode == "contiguous") {
    for (size_t i = 0; i < examples.size(); ++i) shards[i * static_cast<size_t>(n) / examples.size()].push_back(examples[i]);
    return shards;
  }
  if (spec.mode == "iid") {
    std::vector<size_t> order = examples;
    philox_shuffle(order, spec.seed, 0x70617274u, 0);  // "part"
    for (size_t i = 0; i < order.size(); ++i) shards[i % static_cast<size_t>(n)].push_back(order[i]);
    return shards;
  }
  if (spec.mode != "dirichlet") return invalid_argument("unknown partition mode " + spec.mode);
  std::map<int, std::vector<size_t>> by_label;
  for (size_t e : examples) {
    if (e >= labels.size()) return invalid_argument("dirichlet partition needs labelled (classification) data");
    by_label[labels[e]].push_back(e);
  }
  Uniform u{spec.seed ^ 0x6469726963686c74ull};
  for (auto& [label, items] : by_label) {
    philox_shuffle(items, spec.seed, 0x70617274u, static_cast<uint32_t>(label) + 1);
    std::vector<double> p(static_cast<size_t>(n));
    double sum = 0;
    for (auto& x : p) sum += (x = gamma_sample(spec.alpha, u));
    // Cut the label's examples at the cumulative proportions.
    double cum = 0;
    size_t start = 0;
    for (int d = 0; d < n; ++d) {
      cum += p[static_cast<size_t>(d)] / sum;
      const size_t end = d == n - 1 ? items.size() : std::min(items.size(), static_cast<size_t>(std::llround(cum * static_cast<double>(items.size()))));
      for (size_t i = start; i < end; ++i) shards[static_cast<size_t>(d)].push_back(items[i]);
      start = std::max(start, end);
    }
  }
  for (auto& s : shards) std::sort(s.begin(), s.end());
  return shards;
}

}  // namespace pocketllm
