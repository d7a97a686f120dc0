// Fine-tuning a model end to end: load, select trainable tensors, build the task, create or resume a
// run directory, train with the ZO trainer, evaluate, snapshot. The CLI and the SDK both call this.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "pocketllm/client/loader.h"
#include "pocketllm/client/recipe.h"
#include "pocketllm/client/run_dir.h"
#include "pocketllm/client/task.h"
#include "pocketllm/client/trainer.h"
#include "pocketllm/common/thread_pool.h"

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
  // The two passes of a step at once on two halves of the threads (TrainOptions::pair): the same run,
  // one pass's activations more memory. Not part of the run's spec.
  PairMode pair = PairMode::kAuto;
  bool eval_at_start = true;
  // A model already in memory (the SDK's pllm_model), borrowed for the session's lifetime and trained
  // in place; it must hold its base weights (nothing trained yet). Null: loaded from spec.model_path.
  LoadedModel* model = nullptr;
  std::string model_id;  // the borrowed model's id when the caller knows it (else computed)
  // New runs only: when > 0, the learning rate is this over the number of trainable parameters (the
  // general default of docs/training.md, "Default recipes"), and the spec records the result.
  double lr_times_params = 0;
  // New runs only: the recipe's Adam (RecipeAdam). When max_params > 0 and the trainable set has at most
  // that many elements, the run trains with Adam at its batch size and lr, directions chosen as for
  // optimizer adam, and lr_times_params is not used. Callers set it only when the optimizer, batch size, lr
  // and directions are left to the recipe.
  RecipeAdam recipe_adam;
  // Resume only: the data file, when it moved since the run started (checked by its SHA-256).
  std::string data_path_override;
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
  bool validation = false;  // on the validation split carved from the training sample (else the eval set)
  int selected_step = -1;   // the final evaluation of a run with validation: the best step's weights
};

// A run stops with an error after this many skipped steps in a row (a non-finite loss or scalar on every
// direction): weights or activations that hold NaN or infinity, or an eps / lr the model cannot take. The
// skipped steps are in the log, the weights are those of the last applied step, and the run resumes.
constexpr int kMaxSkippedInARow = 32;

// What became of the data files on their way to examples: a user should hear that a 2 000-token document
// was cut to the model's 512 positions, or that half the sample was dropped, before a long run.
struct DataReport {
  int max_length = 0;          // tokens per example in effect: --max-length capped at the model's positions
  int requested_max_length = 0;
  int min_words = 0;
  int dropped_short = 0;       // training examples under the spec's min_words (not used)
  int truncated = 0;           // training examples cut to max_length
  int skipped_long = 0;        // training examples over max_length dropped (--overlong skip) or empty
  int eval_truncated = 0;      // the same for the eval data
  int eval_skipped = 0;
};

// One sentence per loss the report holds (none when the data went through whole), for the CLI and the
// SDK's log.
std::vector<std::string> describe(const DataReport& report);

struct FinetuneResult {
  int steps_done = 0;     // total steps in the run's log
  bool stopped = false;   // the progress callback asked to stop
  std::vector<EvalPoint> evals;
  int skipped_steps = 0;
  double seconds = 0;
  int best_step = -1;          // with validation: the step whose weights the run ends with
  double best_validation_loss = 0;
  bool early_stopped = false;  // patience ran out: the run ended before its step count
  int dropped_short = 0;       // training examples under the spec's min_words (not used)
  DataReport data;             // what the data files lost on the way to examples
  size_t train_examples = 0;   // the sample trained on (after k-shot and the validation split)
  std::string pair_mode;       // how the two passes of a step ran (ZoTrainer::pair_mode)
};

using ProgressFn = std::function<bool(const StepProgress&)>;  // return false to stop after this step
using EvalFn = std::function<void(const EvalPoint&)>;

// A run opened for training: the run directory (locked), the model at the run's last logged step, the
// task and the trainer. run() can be called again after a stop and continues where it stopped.
class FinetuneSession {
 public:
  static Result<std::unique_ptr<FinetuneSession>> open(const FinetuneRequest& request);
  ~FinetuneSession();
  FinetuneSession(const FinetuneSession&) = delete;
  FinetuneSession& operator=(const FinetuneSession&) = delete;

  // Trains until the run's step count, until `max_steps` more steps are done (0: no limit), or until
  // on_step returns false. The final snapshot and evaluation are written when the run completes.
  Result<FinetuneResult> run(const ProgressFn& on_step = nullptr, const EvalFn& on_eval = nullptr, int max_steps = 0);

  LoadedModel& model() { return *model_; }
  RunDir& run_dir() { return run_; }
  ThreadPool* pool() { return &pool_; }
  int steps_done() const { return run_.next_step(); }
  int total_steps() const { return run_.spec().train.steps; }
  const RunSpec& spec() const { return run_.spec(); }
  const DataReport& data_report() const { return data_report_; }
  size_t train_examples() const { return train_examples_; }

 private:
  explicit FinetuneSession(const FinetuneRequest& request);
  Status evaluate(int step, FinetuneResult* result, const EvalFn& on_eval, int selected_step = -1);
  // Validation at `step` (the weights after `step` steps): keeps best.safetensors when the loss improves.
  Status validate(int step, FinetuneResult* result, const EvalFn& on_eval);
  // The run is over (completed or patience ran out): the last snapshot, then the best step's weights
  // and the final evaluation of them.
  Status finish(FinetuneResult* result, const EvalFn& on_eval);
  Result<std::vector<size_t>> load_data(const RunSpec& spec, const std::string& data_path);

  FinetuneRequest request_;
  ThreadPool pool_;
  RunDir run_;
  LoadedModel owned_;
  LoadedModel* model_ = nullptr;
  std::unique_ptr<Task> task_, eval_task_;
  std::unique_ptr<ZoTrainer> trainer_;
  std::vector<size_t> validation_;     // indices into task_ held out from training
  double best_loss_ = 0;
  int best_step_ = -1, since_best_ = 0, last_validated_ = -1;
  int dropped_short_ = 0;              // training examples under min_words
  DataReport data_report_;
  size_t train_examples_ = 0;
  bool finished_ = false;              // the model holds the best step's weights: nothing more to train
  StepRecord record_;  // reused: a step allocates nothing after warm-up
};

// FinetuneSession::open + run, for one-shot callers (the CLI).
Result<FinetuneResult> run_finetune(const FinetuneRequest& request, const ProgressFn& on_step = nullptr,
                                    const EvalFn& on_eval = nullptr);

// Loads the run's base model and brings its trainable tensors to the run's result: the best validated
// step when the run has a validation split (best.safetensors), else its last logged step.
Result<LoadedModel> load_run_model(const std::string& run_dir, RunDir* run_out = nullptr, ThreadPool* pool = nullptr);

// SHA-256 of a file's bytes, hex.
Result<std::string> file_sha256(const std::string& path);

}  // namespace pocketllm
