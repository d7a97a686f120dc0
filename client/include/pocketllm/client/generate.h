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
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // prompt + generated
  size_t prompt_tokens = 0;
  std::vector<float> first_logits;  // logits after the last prompt token
  double seconds = 0;
};

// Called with each new token id; return false to stop.
using TokenCallback = std::function<bool(int32_t id)>;

Result<GenerateResult> generate(ThreadPool* pool, LanguageModel& model, const std::vector<int32_t>& prompt,
                                const GenerateOptions& options, const TokenCallback& on_token = nullptr);

// Picks the next token from logits per the options (exposed for tests).
int32_t sample_token(const float* logits, int vocab, const GenerateOptions& o, uint64_t* rng_state);

}  // namespace pocketllm
