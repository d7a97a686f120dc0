// A conservative estimate of the memory a zeroth-order fine-tuning run needs, so an app can refuse to
// start one that would exceed its budget (the SDK's memory_budget_bytes) and say why. Training needs
// inference memory only: the weights as stored (frozen ones memory-mapped), float32 copies of the
// trainable ones that are not stored as float32, and the forward pass's working set for one batch.
#pragma once

#include <cstdint>
#include <string>

#include "pocketllm/client/model.h"
#include "pocketllm/common/name_pattern.h"

namespace pocketllm {

struct MemoryEstimate {
  uint64_t weights = 0;      // storage of every weight
  uint64_t trainable_f32 = 0;  // extra float32 copies of trainable weights stored in another dtype
  uint64_t activations = 0;  // one forward pass of batch x seq_len tokens
  uint64_t twin_activations = 0;  // the second pass's, when a step runs both at once (paired_forward.h)
  uint64_t total() const { return weights + trainable_f32 + activations + twin_activations; }
  // "about N MiB: W weights + T trainable float32 copies + A activations[ + A of the second pass at once]"
  std::string describe() const;
};

// concurrent_pair: the two passes of a step at once (TrainOptions::concurrent_pair), twice the activations.
MemoryEstimate estimate_training_memory(const LanguageModel& model, const NamePatterns& trainable, int batch, int seq_len,
                                        bool concurrent_pair = false);

// Bytes of one forward pass of batch x seq_len tokens through a model of this shape (conservative: a
// budget check's figure).
uint64_t estimate_activation_bytes(const ModelConfig& c, int batch, int seq_len);
// The buffers a forward pass holds for batch x seq_len tokens as the engine sizes them (residual stream,
// normalised input, q/k/v, attention output, projection output, MLP hidden, packed GEMM input, hidden
// states and their gathered rows): what a second pass at once adds (paired_forward.h). Not conservative;
// within a few percent of the measured growth on Llama 110M and stories260K (docs/training.md).
uint64_t estimate_pass_working_set(const ModelConfig& c, int batch, int seq_len);

// The memory of using the model at `path` (a Hugging Face directory or a llama2.c checkpoint) for
// batch x seq_len tokens, from its configuration and file sizes only: no weight is mapped or read, so
// a budget can be checked before anything is loaded. Trainable copies are not included.
Result<MemoryEstimate> estimate_model_memory(const std::string& path, int batch, int seq_len);

}  // namespace pocketllm
