// The two perturbed forward passes of a ZO step (theta + eps z and theta - eps z), run at once: the
// first on the model, the second on its twin (LanguageModel::twin(): same weights, own activations),
// each on half of the pool's threads. A forward pass gives the same bits on any number of threads, so
// the losses are those of the two passes run one after the other; only the time differs (one pass on
// N threads scales worse than two passes on N / 2 each, most of all for small batches and models).
// The twin's working set (activations, packed inputs) is what it costs: memory, not weights.
#pragma once

#include <atomic>
#include <exception>
#include <memory>
#include <string>

#include "pocketllm/client/memory_estimate.h"
#include "pocketllm/client/model.h"
#include "pocketllm/common/cancel.h"
#include "pocketllm/common/thread_pool.h"

namespace pocketllm {

// kAuto: at once when the pool has two threads or more and the second pass's working set adds at most
// 8 % to one pass's memory (training within 1.10x of inference, with room for the estimate's error) or
// is at most 64 MiB (small models, where the passes at once gain most: docs/training.md).
enum class PairMode { kAuto, kConcurrent, kSequential };
const char* pair_mode_name(PairMode m);  // "auto", "concurrent", "sequential"
bool parse_pair_mode(const std::string& s, PairMode* out);

struct PairChoice {
  bool concurrent = false;
  std::string why;  // "concurrent: …" / "sequential: …", for logs and --help-level explanations
};
// kAuto's rule on byte counts: the second pass's working set against one pass's memory.
bool auto_pair_fits(uint64_t twin_bytes, uint64_t one_pass_bytes);
// What `mode` means for this model, pool and batch shape (the longest sequence the batches hold).
PairChoice choose_pair(const LanguageModel& model, const ThreadPool* pool, PairMode mode, int batch, int seq_len);

// A run under a memory budget (the SDK's sessions, federated devices): without one (0), kAuto; with one,
// kConcurrent when the budget holds the conservative estimate with a second pass's activations, else
// kSequential when it holds the estimate without; `fits` false (refuse the run) when not even that.
// `estimate` is the one checked last: the figure to quote when refusing.
struct BudgetedPair {
  bool fits = true;
  PairMode pair = PairMode::kAuto;
  MemoryEstimate estimate;
};
BudgetedPair pair_under_budget(const LanguageModel& model, const NamePatterns& trainable, int batch, int seq_len,
                               uint64_t budget_bytes);

class PairedForward {
 public:
  // Concurrent when choice.concurrent is set, the pool has two threads or more and the model has a twin;
  // otherwise the passes run one after the other on the whole pool. why() says which and why.
  PairedForward(LanguageModel& model, ThreadPool* pool, const PairChoice& choice);
  PairedForward(const PairedForward&) = delete;
  PairedForward& operator=(const PairedForward&) = delete;

  bool concurrent() const { return twin_ != nullptr; }
  const std::string& why() const { return why_; }

  // *lp = loss(pool, model, plus) and *lm = loss(pool, twin, minus), where `loss` returns a
  // Result<LossResult> and may run on two threads at once (it must only read shared state). The first
  // error is returned (the plus pass's when both fail); an exception on either thread (cancellation,
  // out of memory) is rethrown on the caller's once both passes have stopped.
  template <class Loss>
  Status run(Loss&& loss, const Perturbation& plus, const Perturbation& minus, LossResult* lp, LossResult* lm) {
    if (!twin_) {
      auto a = loss(pool_, model_, plus);
      if (!a) return a.status();
      auto b = loss(pool_, model_, minus);
      if (!b) return b.status();
      *lp = *a;
      *lm = *b;
      return Status::ok();
    }
    Status status[2];
    std::exception_ptr error[2];
    LossResult* out[2] = {lp, lm};
    const std::atomic<bool>* cancel = current_cancel_flag();
    pool_->run(2, [&](size_t side) {
      CancelScope scope(cancel);
      try {
        auto r = loss(half_[side].get(), side == 0 ? model_ : *twin_, side == 0 ? plus : minus);
        if (r) {
          *out[side] = *r;
        } else {
          status[side] = r.status();
        }
      } catch (...) {
        error[side] = std::current_exception();
      }
    });
    for (const auto& e : error)
      if (e) std::rethrow_exception(e);
    return status[0].is_ok() ? status[1] : status[0];
  }

 private:
  LanguageModel& model_;
  ThreadPool* pool_;
  std::unique_ptr<LanguageModel> twin_;
  std::unique_ptr<ThreadPool> half_[2];  // null with a pool of two: each pass on one thread
  std::string why_;
};

}  // namespace pocketllm
