#include "pocketllm/client/generate.h"

#include "pocketllm/common/cancel.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "pocketllm/common/philox.h"

namespace pocketllm {
namespace {

// A uniform double in [0, 1) from a Philox stream (counter = state, key = seed halves).
double next_uniform(uint64_t* state, uint64_t seed) {
  const uint64_t c = (*state)++;
  const PhiloxBlock x = philox4x32_10({static_cast<uint32_t>(c), static_cast<uint32_t>(c >> 32), 0x5a4d504c, 0},
                                      philox_key_from_seed(seed));
  const uint64_t bits = (static_cast<uint64_t>(x[0]) << 21) ^ (static_cast<uint64_t>(x[1]) >> 11);
  return static_cast<double>(bits & ((uint64_t{1} << 53) - 1)) * 0x1p-53;
}

}  // namespace

int32_t sample_token(const float* logits, int vocab, const GenerateOptions& o, uint64_t* rng_state) {
  if (o.greedy || o.temperature <= 0.0f) return static_cast<int32_t>(std::max_element(logits, logits + vocab) - logits);
  std::vector<int32_t> idx(static_cast<size_t>(vocab));
  std::iota(idx.begin(), idx.end(), 0);
  size_t keep = static_cast<size_t>(vocab);
  if (o.top_k > 0 && o.top_k < vocab) {
    keep = static_cast<size_t>(o.top_k);
    std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(keep), idx.end(),
                      [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  } else {
    std::sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  }
  std::vector<double> prob(keep);
  const double mx = logits[idx[0]];
  double sum = 0;
  for (size_t i = 0; i < keep; ++i) {
    prob[i] = std::exp((logits[idx[i]] - mx) / o.temperature);
    sum += prob[i];
  }
  if (o.top_p < 1.0f) {
    double cum = 0;
    size_t n = 0;
    while (n < keep) {
      cum += prob[n] / sum;
      ++n;
      if (cum >= o.top_p) break;
    }
    keep = n;
    sum = 0;
    for (size_t i = 0; i < keep; ++i) sum += prob[i];
  }
  const double r = next_uniform(rng_state, o.seed) * sum;
  double acc = 0;
  for (size_t i = 0; i < keep; ++i) {
    acc += prob[i];
    if (r < acc) return idx[i];
  }
  return idx[keep - 1];
}

void apply_repetition_penalty(float* logits, int vocab, const std::vector<char>& seen, float penalty) {
  if (penalty == 1.0f) return;
  for (int i = 0; i < vocab && i < static_cast<int>(seen.size()); ++i)
    if (seen[static_cast<size_t>(i)]) logits[i] = logits[i] > 0 ? logits[i] / penalty : logits[i] * penalty;
}

Result<GenerateResult> generate(ThreadPool* pool, LanguageModel& model, const std::vector<int32_t>& prompt,
                                const GenerateOptions& o, const TokenCallback& on_token) {
  if (prompt.empty()) return invalid_argument("generate: empty prompt (add a BOS token)");
  if (o.max_new_tokens < 0) return invalid_argument("generate: max_new_tokens must be >= 0");
  if (!o.greedy && !(o.temperature > 0.0f)) return invalid_argument("generate: temperature must be > 0");
  if (o.top_p <= 0.0f || o.top_p > 1.0f) return invalid_argument("generate: top_p must be in (0, 1]");
  if (!(o.repetition_penalty > 0.0f) || o.repetition_penalty > 100.0f)
    return invalid_argument("generate: repetition_penalty must be in (0, 100]");
  if (o.prefill_piece < 1) return invalid_argument("generate: prefill_piece must be >= 1");
  const ModelConfig& c = model.config();
  std::vector<char> seen(static_cast<size_t>(c.vocab_size), 0);
  for (int32_t t : prompt)
    if (t >= 0 && t < c.vocab_size) seen[static_cast<size_t>(t)] = 1;
  // The prompt must leave room for one new token; the continuation stops where the context is full.
  if (prompt.size() >= static_cast<size_t>(c.max_position_embeddings))
    return out_of_range("the prompt is " + std::to_string(prompt.size()) + " tokens and the model's context is " +
                        std::to_string(c.max_position_embeddings) + " positions: a prompt of at most " +
                        std::to_string(c.max_position_embeddings - 1) + " leaves room for a new token");
  const int room = c.max_position_embeddings - static_cast<int>(prompt.size());
  const int new_tokens = std::min(o.max_new_tokens, room);
  const int capacity = static_cast<int>(prompt.size()) + new_tokens;
  const auto t0 = std::chrono::steady_clock::now();
  KVCache cache = model.make_cache(1, capacity);
  GenerateResult result;
  result.tokens = prompt;
  result.prompt_tokens = prompt.size();
  Perturbation none;
  std::vector<float> hidden, logits;
  // A long prompt goes in in pieces: one piece's activations and attention scores at a time, and a
  // sliding-window layer's cache holds its window plus a piece instead of the whole prompt.
  const size_t piece_size = static_cast<size_t>(o.prefill_piece);
  size_t fed = 0;
  for (; new_tokens > 0 && prompt.size() - fed > piece_size; fed += piece_size) {
    throw_if_cancelled();
    const auto piece = prompt.begin() + static_cast<std::ptrdiff_t>(fed);
    POCKETLLM_RETURN_IF_ERROR(model.forward_hidden(
        pool, TokenBatch::from_sequences({{piece, piece + static_cast<std::ptrdiff_t>(piece_size)}}), none, &cache, &hidden));
  }
  TokenBatch batch = TokenBatch::from_sequences({{prompt.begin() + static_cast<std::ptrdiff_t>(fed), prompt.end()}});
  uint64_t rng = 0;
  for (int step = 0; step < new_tokens; ++step) {
    throw_if_cancelled();
    POCKETLLM_RETURN_IF_ERROR(model.forward_hidden(pool, batch, none, &cache, &hidden));
    model.logits(pool, hidden.data(), {batch.seq_len - 1}, none, &logits);
    if (step == 0) result.first_logits = logits;
    apply_repetition_penalty(logits.data(), c.vocab_size, seen, o.repetition_penalty);
    const int32_t next = sample_token(logits.data(), c.vocab_size, o, &rng);
    result.tokens.push_back(next);
    if (next >= 0 && next < c.vocab_size) seen[static_cast<size_t>(next)] = 1;
    if (on_token && !on_token(next)) break;
    if (o.stop_at_eos && next == c.eos_token_id) break;
    if (step + 1 == new_tokens && new_tokens < o.max_new_tokens) result.context_full = true;
    batch = TokenBatch::from_sequences({{next}});
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

}  // namespace pocketllm
