// Aggregation strategies: from the scalars many devices submitted for one round to one coefficient per
// seed. Pure functions over plain data, each a small unit with its own tests; the round logic
// (rounds.h, TaskRounds::tick) calls them. A device submits, for the round's tau seeds in order, tau projected-gradient
// coefficients (already multiplied by the round's learning rate) and the number of examples it used.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pocketllm/common/status.h"

namespace pocketllm::server {

struct Submission {
  std::string device;
  std::vector<float> coeffs;  // one per seed of the round, in seed order
  uint64_t examples = 1;      // weight for the weighted mean
  double weight = 1.0;        // extra down-weighting (e.g. a stale submission), multiplies examples
  uint64_t base_version = 0;  // the log version the device computed its scalars from
};

enum class Strategy { kWeightedMean, kMedian, kTrimmedMean };

// Safe by default: before any strategy combines them, every scalar of a seed is clipped — to
// [-clip, clip] when a fixed bound is set, else to median ± clip_scale × (MAD + |median|) of that seed's scalars
// (the robust scale of the round itself, so a minority of extreme values cannot move the result far);
// every device's weight is capped (its example count at max_examples); the trimmed mean trims at least
// one value from each end once there are three.
struct AggregationOptions {
  Strategy strategy = Strategy::kWeightedMean;
  double trim_fraction = 0.1;  // trimmed mean: fraction cut from each end, in [0, 0.5)
  float clip = 0.0f;           // fixed |coeff| bound; 0 = the automatic, robust bound below
  double clip_scale = 5.0;     // automatic bound: median ± clip_scale × (median absolute deviation + |median|)
  uint64_t max_examples = 0;   // cap on the example count a submission is weighted by; 0 = no cap
  size_t min_submissions = 1;
};

const char* strategy_name(Strategy s);
bool parse_strategy(const std::string& text, Strategy* out);

// One aggregated coefficient per seed. Errors: no or too few submissions, a submission with the wrong
// number of scalars, a non-finite scalar, a zero total weight.
Result<std::vector<float>> aggregate(const std::vector<Submission>& submissions, size_t tau,
                                     const AggregationOptions& options);

// Seed groups (docs/protocol.md §5): submission i belongs to group group_of[i] < groups, whose devices
// ran the group's own tau seeds. Every step-k scalar is first clipped against the bound of all
// submissions' step-k scalars (pooled: the scalars of different seeds share one distribution, and a
// group may hold a single device), then each group's members are combined by the strategy. Returns
// one vector per group: tau coefficients, or empty for a group nobody submitted to. With one group it
// is aggregate().
Result<std::vector<std::vector<float>>> aggregate_groups(const std::vector<Submission>& submissions,
                                                         const std::vector<uint32_t>& group_of, uint32_t groups, size_t tau,
                                                         const AggregationOptions& options);

}  // namespace pocketllm::server
