// Small layers over many sequences: each thread runs every layer for its own group of whole sequences.
//
// Split op by op, a layer hands work to the pool about fifteen times (norm, q/k/v, attention, o, MLP, …).
// For a layer of a few ten thousand weights each hand-off costs about as much as the work it hands over
// (tens of µs on a VM), so two threads ran stories260K slower than one. Rows of different sequences never
// meet inside a layer (attention stays within a sequence), so a pass can instead give each thread a
// contiguous group of sequences and one task for all its layers: one hand-off per pass.
//
// The bytes are those of the op-by-op run: on the packed GEMM paths every output row is summed in the same
// order whatever the number of rows (kernels_gemm.h), norms, rope and attention are per row or per
// sequence, and a group is kept at kMinGroupRows rows or more so no kernel takes its few-row path. Eigen's
// product is not promised to be row-independent, so the Eigen path keeps the op-by-op split.
#include <algorithm>

#include "arch/llama.h"
#include "kernels_gemm.h"

namespace pocketllm {

namespace {

// A layer with more weights than this has enough work per op for the pool's split to pay (and its
// weights would be read once per group rather than once per pass).
constexpr size_t kSmallLayerWeights = size_t{1} << 17;
// Fewest rows a group may hold (above the GEMM's and the quantized kernels' few-row paths).
constexpr size_t kMinGroupRows = 32;

}  // namespace

size_t LlamaModel::sequence_groups(ThreadPool* pool, size_t B, size_t R, const KVCache* cache) {
  groups_.clear();
  if (pool == nullptr || pool->size() < 2 || cache != nullptr || B < 2) return 1;
  if (gemm::chosen_path() == gemm::Path::kEigen) return 1;
  const ModelConfig& c = config_;
  const size_t d = static_cast<size_t>(c.hidden_size), hd = static_cast<size_t>(c.head_dim);
  const size_t qd = static_cast<size_t>(c.num_heads) * hd, kvd = static_cast<size_t>(c.num_kv_heads) * hd;
  const size_t layer_weights = d * (2 * qd + 2 * kvd) + 3 * d * static_cast<size_t>(c.intermediate_size);
  if (layer_weights > kSmallLayerWeights) return 1;
  // Whole sequences, each cut at the sequence boundary nearest to the group's share of the rows, leaving
  // at least one sequence for every later group (the sequences' rows are contiguous).
  const size_t wanted = std::min<size_t>({static_cast<size_t>(pool->size()), B, R / kMinGroupRows});
  auto row_of = [&](size_t b) { return b < B ? seq_start_[b] : R; };
  size_t b0 = 0;
  for (size_t g = 1; g <= wanted; ++g) {
    size_t b1 = B;
    if (g < wanted) {
      const size_t target = R * g / wanted, last = B - (wanted - g);
      b1 = b0 + 1;
      while (b1 < last && row_of(b1 + 1) <= target) ++b1;
      if (b1 < last && row_of(b1 + 1) - target < target - std::min(target, row_of(b1))) ++b1;
    }
    groups_.push_back(RowSpan{b0, b1, row_of(b0), row_of(b1)});
    b0 = b1;
  }
  for (const RowSpan& s : groups_)
    if (s.r1 - s.r0 < kMinGroupRows) groups_.clear();
  if (groups_.size() < 2) groups_.clear();
  return std::max<size_t>(groups_.size(), 1);
}

void LlamaModel::run_layers_grouped(ThreadPool* pool, size_t layers, size_t T, const Perturbation& p) {
  const size_t ff = static_cast<size_t>(config_.intermediate_size);
  group_up_.resize(groups_.size());
  for (size_t g = 0; g < groups_.size(); ++g) {  // the unfused MLP's buffer, sized here (no allocation in a task)
    std::vector<float>& up = group_up_[g];
    const size_t need = (groups_[g].r1 - groups_[g].r0) * ff;
    if (up.size() < need) up.resize(need);
  }
  parallel_for(pool, groups_.size(), [&](size_t g) {
    for (size_t l = 0; l < layers; ++l) run_layer(nullptr, l, groups_[g], T, p, nullptr, &group_up_[g]);
  });
}

}  // namespace pocketllm
