// Text generation with a KV cache: greedy or sampled (temperature, top-k, top-p), seeded, streamed.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "pocketllm/client/model.h"
#include "pocketllm/client/tokenizer.h"

namespace pocketllm {

struct GenerateOptions {
  int max_new_tokens = 64;
  bool greedy = true;
  float temperature = 1.0f;
  int top_k = 0;       // 0: off
  float top_p = 1.0f;  // 1: off
  uint64_t seed = 0;
  bool stop_at_eos = true;
  // CTRL / Hugging Face repetition penalty: before choosing, the logit of every token already in the
  // sequence (prompt included) is divided by this when positive and multiplied when negative. 1: off.
  float repetition_penalty = 1.0f;
  // Prompt tokens per forward pass: a longer prompt goes in in pieces of this many, so its activations
  // and attention scores are one piece's, and a sliding-window layer's cache holds its window plus a
  // piece (the continuation is the same up to rounding). >= 1.
  int prefill_piece = 512;
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // prompt + generated
  size_t prompt_tokens = 0;
  std::vector<float> first_logits;  // logits after the last prompt token
  double seconds = 0;
  bool context_full = false;  // stopped before max_new_tokens: the model's context was full
};

// Called with each new token id; return false to stop.
using TokenCallback = std::function<bool(int32_t id)>;

// Continues `prompt` by up to max_new_tokens tokens: fewer at the end-of-text token (stop_at_eos), when
// on_token returns false, or when the model's context is full (context_full). A prompt that fills the
// context by itself is OUT_OF_RANGE.
Result<GenerateResult> generate(ThreadPool* pool, LanguageModel& model, const std::vector<int32_t>& prompt,
                                const GenerateOptions& options, const TokenCallback& on_token = nullptr);

// Applies the repetition penalty to `logits` for every token marked in `seen` (exposed for tests).
void apply_repetition_penalty(float* logits, int vocab, const std::vector<char>& seen, float penalty);
// Picks the next token from logits per the options (exposed for tests).
int32_t sample_token(const float* logits, int vocab, const GenerateOptions& o, uint64_t* rng_state);

}  // namespace pocketllm
