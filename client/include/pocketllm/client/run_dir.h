// A fine-tuning run on disk (docs/training.md):
//   spec.json              what the run is: base model id, trainable set, hyper-parameters, data, seeds
//   log.jsonl              one line per update entry (append-only, flushed every step, fsynced at intervals)
//   snapshot.safetensors   trainable tensors at some step (atomic), to shorten resume
//   metrics.jsonl          evaluations
//   best.safetensors       with a validation split: trainable tensors at the best validated step (atomic)
// The weights at any step are the base model plus the replay of the log, bit for bit, so a run killed
// at any moment resumes to exactly the weights an uninterrupted run reaches.
#pragma once

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pocketllm/client/lora.h"
#include "pocketllm/client/model.h"
#include "pocketllm/client/task.h"
#include "pocketllm/client/trainer.h"
#include "pocketllm/common/update_log.h"

namespace pocketllm {

// Early stopping on a validation split carved from the training sample (never the evaluation set).
struct ValidationOptions {
  int examples = 0;  // per label (classify) or in all (lm); 0: no validation split
  int every = 0;     // steps between validations (0: the run's steps / 20, at least 1)
  int patience = 0;  // stop after this many validations without a better loss (0: run every step)
  bool enabled() const { return examples > 0; }
  int interval(int steps) const { return every > 0 ? every : std::max(1, steps / 20); }
};

struct RunSpec {
  std::string model_path, model_id, model_format;
  std::string trainable = "*";
  std::string step_scales;  // apply_step_scales(): "PATTERN=S,..." ("" = every tensor at 1)
  // apply_trainable_rows(): "PATTERN=ROWS;..." ("" = every row). A new run may say "sample"; spec.json
  // always holds the resolved row lists, so resuming and replaying never need the data to know them.
  std::string trainable_rows;
  std::string added_biases;  // add_zero_biases() targets ("" = none): zero biases added before `trainable` selects
  LoraConfig lora;  // adapters trained beside (or instead of) the tensors `trainable` selects
  DType quantize = DType::kF32;  // frozen matrices quantized in memory at load (LoadOptions::quantize)
  TrainOptions train;
  TaskOptions task;
  std::string data_path, data_sha256;
  int k_shot = 0;
  int min_words = 0;  // training examples of fewer words are dropped before the k-shot draw (0: keep all)
  ValidationOptions validation;
  int snapshot_every = 100;
  int fsync_every = 10;

  nlohmann::json to_json() const;
  static Result<RunSpec> from_json(const nlohmann::json& j, const std::string& where);
};

struct LoggedStep {
  int step = 0;
  std::vector<UpdateEntry> entries;  // empty when the step was skipped
  float decay = 0;                   // weight decay applied before the entries
  double loss_plus = 0, loss_minus = 0;
  // With momentum: the step's own projected gradients, one per direction (its first n entries' seeds are
  // the directions); they let a resumed run re-apply them (ZoTrainer::restore_history).
  std::vector<double> grads;
  // Each own direction's loss_plus, in direction order: an Adam run fits its gradient again from them on
  // resume (ZoTrainer::restore_adam).
  std::vector<double> losses;
};

// Applies logged steps [first, last) to the tensors exactly as the run applied them: all entries in one
// pass when no step has weight decay (each chunk stays in cache; the same bytes), else step by step.
void replay_steps(ThreadPool* pool, Distribution dist, const std::vector<LoggedStep>& steps, size_t first, size_t last,
                  const std::vector<NamedTensor>& tensors);

class RunDir {
 public:
  RunDir() = default;
  ~RunDir();
  RunDir(RunDir&& o) noexcept;
  RunDir& operator=(RunDir&& o) noexcept;

  // Creates `path` (refusing a directory that already holds a run) and writes spec.json.
  static Result<RunDir> create(const std::string& path, const RunSpec& spec);
  // Opens an existing run; reads spec.json and the complete steps of log.jsonl, cutting a torn tail.
  // Holds an exclusive lock until destroyed: a second opener (process or handle) gets kBusy. Paths in
  // spec.json are stored relative to the run directory and come back resolved against it.
  static Result<RunDir> open(const std::string& path);
  // Raises the run's step count to `steps` (spec.json rewritten atomically). Only for schedules that do
  // not depend on the total (constant, after any warm-up): the extended run is then step for step the
  // run that had been started with `steps`. Fewer steps than already logged, or a linear/cosine schedule,
  // is refused.
  Status extend_steps(int steps);

  const RunSpec& spec() const { return spec_; }
  const std::string& path() const { return path_; }
  const std::vector<LoggedStep>& steps() const { return steps_; }
  int next_step() const { return static_cast<int>(steps_.size()); }
  UpdateLog update_log() const;  // all applied entries in order

  Status append(const StepRecord& rec);  // one write per step; fsync every spec.fsync_every steps
  Status sync();
  Status append_metrics(const nlohmann::json& line);

  // Trainable tensors of `model` as snapshot.safetensors (atomic), tagged with step and model id.
  Status write_snapshot(int step, LanguageModel& model);
  // Loads the snapshot into the model's trainable tensors; returns its step, or -1 when there is none.
  Result<int> load_snapshot(LanguageModel& model);
  // The best validated step's trainable tensors (best.safetensors), tagged also with its validation loss.
  Status write_best(int step, double validation_loss, LanguageModel& model);
  // Loads them into the model; returns the step, or -1 when the run has none. `loss` (optional) receives
  // the validation loss it was kept for.
  Result<int> load_best(LanguageModel& model, double* loss = nullptr);
  // The best step and its validation loss without loading tensors (-1 when none).
  Result<int> best_step(double* loss = nullptr) const;

 private:
  Status load_log();
  Status write_tensors(const std::string& file, int step, LanguageModel& model, const std::map<std::string, std::string>& extra);
  // A snapshot-format file's step (and metadata), checked against the run's model id.
  Result<int> read_tensors(const std::string& file, LanguageModel* model, std::map<std::string, std::string>* meta) const;
  std::string path_;
  RunSpec spec_;
  std::vector<LoggedStep> steps_;
  int log_fd_ = -1;
  int lock_fd_ = -1;  // flock held while the run is open (a second opener gets kBusy)
  int since_sync_ = 0;
};

}  // namespace pocketllm
