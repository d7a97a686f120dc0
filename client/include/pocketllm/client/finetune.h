// Fine-tuning a model end to end: load, select trainable tensors, build the task, create or resume a
// run directory, train with the ZO trainer, evaluate, snapshot. The CLI and the SDK both call this.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "pocketllm/client/loader.h"
#include "pocketllm/client/run_dir.h"

namespace pocketllm {

struct FinetuneRequest {
  std::string out_dir;
  bool resume = false;
  RunSpec spec;                // ignored on resume (the run's own spec is used)
  int extend_to_steps = 0;     // resume only: raise the run's step count (constant lr; see RunDir::extend_steps)
  std::string eval_data_path;  // optional held-out set (same task)
  int eval_every = 0;          // steps; 0 = only at start and end
  int eval_batch_size = 32;
  int threads = 0;
  bool eval_at_start = true;
};

struct StepProgress {
  int step = 0;       // the step just finished (0-based)
  int total = 0;
  double loss = 0;    // (L+ + L-) / 2
  bool skipped = false;
  double seconds = 0; // wall time since the start of this session
  int first_step = 0; // first step of this session (resumed runs start later)
};

struct EvalPoint {
  int step = 0;
  EvalResult result;
};

struct FinetuneResult {
  int steps_done = 0;     // total steps in the run's log
  bool stopped = false;   // the progress callback asked to stop
  std::vector<EvalPoint> evals;
  int skipped_steps = 0;
  double seconds = 0;
};

using ProgressFn = std::function<bool(const StepProgress&)>;  // return false to stop after this step
using EvalFn = std::function<void(const EvalPoint&)>;

Result<FinetuneResult> run_finetune(const FinetuneRequest& request, const ProgressFn& on_step = nullptr,
                                    const EvalFn& on_eval = nullptr);

// Loads the run's base model and brings its trainable tensors to the run's last logged step.
Result<LoadedModel> load_run_model(const std::string& run_dir, RunDir* run_out = nullptr, ThreadPool* pool = nullptr);

// SHA-256 of a file's bytes, hex.
Result<std::string> file_sha256(const std::string& path);

}  // namespace pocketllm
