// The model interface every architecture implements: token batches in, hidden states, logits and
// losses out, with an optional perturbation of the trainable weights (zeroth-order steps) and an
// optional KV cache (generation).
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pocketllm/client/model_config.h"
#include "pocketllm/client/weights.h"
#include "pocketllm/common/status.h"
#include "pocketllm/common/thread_pool.h"

namespace pocketllm {

// B sequences, right-padded to T tokens. tokens[b * T + t]; lengths[b] real tokens in sequence b.
struct TokenBatch {
  int batch = 0;
  int seq_len = 0;
  std::vector<int32_t> tokens;
  std::vector<int32_t> lengths;

  static TokenBatch from_sequences(const std::vector<std::vector<int32_t>>& seqs, int32_t pad_id = 0);
  // Refills this batch with the given sequences, reusing its storage (no allocation once it is large
  // enough). get(i) returns sequence i.
  template <class Get>
  void assign(size_t count, Get&& get, int32_t pad_id) {
    batch = static_cast<int>(count);
    seq_len = 0;
    for (size_t i = 0; i < count; ++i) seq_len = std::max(seq_len, static_cast<int>(get(i).size()));
    tokens.assign(count * static_cast<size_t>(seq_len), pad_id);
    lengths.resize(count);
    for (size_t i = 0; i < count; ++i) {
      const auto& s = get(i);
      std::copy(s.begin(), s.end(), tokens.begin() + static_cast<std::ptrdiff_t>(i * static_cast<size_t>(seq_len)));
      lengths[i] = static_cast<int32_t>(s.size());
    }
  }
  Status validate(int vocab_size) const;
};

// Key/value cache for incremental decoding of `batch` sequences up to `capacity` positions.
// A layer with full attention holds every position. A sliding-window layer (Gemma 3's local layers)
// holds only what its queries can still see: its buffer starts at absolute position first[l] and has
// room for slots[l] positions; when the next tokens would not fit, the keys older than the window are
// dropped (the rest moved to the front), and the buffer grows only when one call's tokens plus the
// window exceed it (a long prompt decoded in one pass).
struct KVCache {
  int batch = 0;
  int capacity = 0;
  int length = 0;  // positions filled (same for all sequences)
  std::vector<std::vector<float>> k, v;  // per layer: [batch * slots[l], kv_heads * head_dim]
  std::vector<size_t> first;             // per layer: absolute position held in slot 0
  std::vector<size_t> slots;             // per layer: positions its buffer holds per sequence
  // Bytes the keys and values take now.
  size_t bytes() const {
    size_t n = 0;
    for (size_t l = 0; l < k.size(); ++l) n += (k[l].size() + v[l].size()) * sizeof(float);
    return n;
  }
};

// One position whose loss is the cross-entropy over a few candidate tokens (classification):
// label_index selects the correct candidate.
struct ChoiceTarget {
  int row = 0;       // sequence in the batch
  int position = 0;  // position whose output is scored (the token predicting the answer, or <mask>)
  int label_index = 0;
};

struct LossResult {
  double sum = 0;     // sum of per-position losses
  size_t count = 0;   // positions scored
  double mean() const { return count ? sum / static_cast<double>(count) : 0.0; }
};

class LanguageModel {
 public:
  virtual ~LanguageModel() = default;

  virtual const ModelConfig& config() const = 0;
  virtual WeightStore& weights() = 0;
  virtual const WeightStore& weights() const = 0;
  virtual bool is_causal() const { return true; }

  // Final hidden states [B * T, hidden_size] (after the final norm / head transform).
  // With a cache, the batch holds the new tokens, appended after cache->length positions.
  virtual Status forward_hidden(ThreadPool* pool, const TokenBatch& batch, const Perturbation& p, KVCache* cache,
                                std::vector<float>* hidden) = 0;
  // Logits [rows.size(), vocab] of the given hidden rows.
  virtual void logits(ThreadPool* pool, const float* hidden, const std::vector<int>& rows, const Perturbation& p,
                      std::vector<float>* out) = 0;
  // Mean next-token cross-entropy: for each (b, t) with targets[b*T + t] >= 0, -log softmax(logits)[target].
  // Streams over the vocabulary: never materialises [B*T, vocab].
  virtual Result<LossResult> token_loss(ThreadPool* pool, const TokenBatch& batch, const std::vector<int32_t>& targets,
                                        const Perturbation& p) = 0;
  // Cross-entropy over candidate tokens at chosen positions (label-word classification).
  virtual Result<LossResult> choice_loss(ThreadPool* pool, const TokenBatch& batch, const std::vector<ChoiceTarget>& targets,
                                         const std::vector<int32_t>& candidates, const Perturbation& p,
                                         std::vector<float>* candidate_logits = nullptr) = 0;

  KVCache make_cache(int batch, int capacity) const;

  // A second model over the same weights (nothing copied: the same Weight objects, adapters included)
  // with activation buffers of its own, so that two threads can run forward passes of this model and
  // its twin at once (the two perturbed passes of a ZO step: client/paired_forward.h). Weights must not
  // change while either runs; the twin must not outlive this model. Unsupported by default.
  virtual Result<std::unique_ptr<LanguageModel>> twin();
};

}  // namespace pocketllm
