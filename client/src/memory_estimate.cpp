#include "pocketllm/client/memory_estimate.h"

#include <cstdio>

#include "pocketllm/common/dtype.h"

namespace pocketllm {

std::string MemoryEstimate::describe() const {
  char b[200];
  const double mib = 1 << 20;
  std::snprintf(b, sizeof b, "about %.1f MiB: %.1f MiB weights + %.1f MiB trainable float32 copies + %.1f MiB activations",
                static_cast<double>(total()) / mib, static_cast<double>(weights) / mib, static_cast<double>(trainable_f32) / mib,
                static_cast<double>(activations) / mib);
  return b;
}

MemoryEstimate estimate_training_memory(const LanguageModel& model, const NamePatterns& trainable, int batch, int seq_len) {
  MemoryEstimate e;
  const WeightStore& w = model.weights();
  e.weights = w.storage_bytes();
  for (const auto& weight : w.all())
    if (weight->dtype != DType::kF32 && (weight->trainable || trainable.matches(weight->name))) e.trainable_f32 += 4ull * weight->numel();
  const ModelConfig& c = model.config();
  const double tokens = static_cast<double>(batch) * seq_len;
  // Per token: residual stream, normalised input, q/k/v, attention output, the MLP's two hidden
  // vectors; per sequence: one head's score matrix; per token of the streamed loss: one row of logits.
  const double per_token = 4.0 * c.hidden_size + 2.0 * c.num_heads * c.head_dim + 2.0 * c.num_kv_heads * c.head_dim +
                           2.0 * c.intermediate_size + static_cast<double>(c.vocab_size);
  const double scores = static_cast<double>(batch) * seq_len * seq_len;
  e.activations = static_cast<uint64_t>((tokens * per_token + scores) * 4.0 * 1.25);  // 25 % for scratch and alignment
  return e;
}

}  // namespace pocketllm
