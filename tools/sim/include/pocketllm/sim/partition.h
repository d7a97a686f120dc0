// Splitting a dataset across simulated devices, deterministically from a seed (the same shards in the
// simulator and in separate device processes): IID, Dirichlet(alpha) non-IID by label (classification),
// or contiguous blocks in file order (LM text: one source per device when the file is grouped by source).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pocketllm/common/status.h"

namespace pocketllm {

struct PartitionSpec {
  std::string mode = "iid";  // iid | dirichlet | contiguous
  double alpha = 0.5;        // dirichlet concentration: small = each device sees few labels
  uint64_t seed = 0;
};

// "iid", "contiguous", "dirichlet:0.3".
Result<PartitionSpec> parse_partition(const std::string& text, uint64_t seed);

// Shards of `examples` (indices into a task) for n devices; labels[i] is example i's class (needed for
// dirichlet). Every example goes to exactly one shard; shards may be empty under dirichlet.
Result<std::vector<std::vector<size_t>>> partition_examples(const std::vector<size_t>& examples, const std::vector<int>& labels,
                                                            int n, const PartitionSpec& spec);

}  // namespace pocketllm
