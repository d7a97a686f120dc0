#include "pocketllm/client/paired_forward.h"

#include <cstdio>

namespace pocketllm {

const char* pair_mode_name(PairMode m) {
  switch (m) {
    case PairMode::kConcurrent: return "concurrent";
    case PairMode::kSequential: return "sequential";
    default: return "auto";
  }
}

bool parse_pair_mode(const std::string& s, PairMode* out) {
  for (PairMode m : {PairMode::kAuto, PairMode::kConcurrent, PairMode::kSequential})
    if (s == pair_mode_name(m)) {
      *out = m;
      return true;
    }
  return false;
}

bool auto_pair_fits(uint64_t twin_bytes, uint64_t one_pass_bytes) {
  // 8 %, not 10 %: the estimate has been up to 3 % under the measured growth (OPT-1.3B), and training
  // must stay within 1.10x of inference.
  return twin_bytes <= (uint64_t{64} << 20) || twin_bytes * 100 <= one_pass_bytes * 8;
}

PairChoice choose_pair(const LanguageModel& model, const ThreadPool* pool, PairMode mode, int batch, int seq_len) {
  const int threads = pool ? pool->size() : 1;
  if (mode == PairMode::kSequential) return {false, "sequential: asked for"};
  if (threads < 2) return {false, "sequential: one thread"};
  if (mode == PairMode::kConcurrent) return {true, "concurrent: asked for"};
  const double mib = 1 << 20;
  const uint64_t twin = estimate_pass_working_set(model.config(), batch, seq_len);
  const MemoryEstimate one = estimate_training_memory(model, NamePatterns(""), batch, seq_len);
  const uint64_t one_pass = one.weights + one.trainable_f32 + twin;  // what inference of the batch holds
  char b[240];
  if (auto_pair_fits(twin, one_pass)) {
    std::snprintf(b, sizeof b, "concurrent: the second pass's ~%.0f MiB of activations is %.0f %% of one pass's ~%.0f MiB",
                  twin / mib, 100.0 * twin / one_pass, one_pass / mib);
    return {true, b};
  }
  std::snprintf(b, sizeof b,
                "sequential: at once, the second pass's ~%.0f MiB of activations would add %.0f %% to one pass's ~%.0f MiB "
                "(over 8 %% and 64 MiB; --pair concurrent runs it anyway)",
                twin / mib, 100.0 * twin / one_pass, one_pass / mib);
  return {false, b};
}

BudgetedPair pair_under_budget(const LanguageModel& model, const NamePatterns& trainable, int batch, int seq_len,
                               uint64_t budget_bytes) {
  BudgetedPair r;
  if (budget_bytes == 0) return r;
  r.pair = PairMode::kConcurrent;
  r.estimate = estimate_training_memory(model, trainable, batch, seq_len, /*concurrent_pair=*/true);
  if (r.estimate.total() <= budget_bytes) return r;
  r.pair = PairMode::kSequential;
  r.estimate = estimate_training_memory(model, trainable, batch, seq_len);
  r.fits = r.estimate.total() <= budget_bytes;
  return r;
}

PairedForward::PairedForward(LanguageModel& model, ThreadPool* pool, const PairChoice& choice)
    : model_(model), pool_(pool), why_(choice.why) {
  const int threads = pool ? pool->size() : 1;
  if (!choice.concurrent) return;
  if (threads < 2) {
    why_ = "sequential: one thread";
    return;
  }
  auto twin = model.twin();
  if (!twin) {
    why_ = "sequential: " + twin.status().message();
    return;
  }
  twin_ = std::move(twin.value());
  if (threads > 2) {
    half_[0] = std::make_unique<ThreadPool>(threads / 2);
    half_[1] = std::make_unique<ThreadPool>(threads - threads / 2);
  }
  why_ += " (the two passes on " + std::to_string(threads / 2) + " + " + std::to_string(threads - threads / 2) + " threads)";
}

}  // namespace pocketllm
