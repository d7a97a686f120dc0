// The MeZO / SPSA zeroth-order trainer (docs/training.md).
//
// Step t, for each of n directions k: seed s = step_seed(run seed, t, k); L+ = loss(theta + eps z(s)),
// L- = loss(theta - eps z(s)), both with the perturbation added to weight tiles as the forward pass
// reads them (theta itself is untouched); g = (L+ - L-) / (2 eps), optionally clipped; the entry
// (s, lr_t * g / n) is logged; then theta <- theta - coeff * z(s) for every trainable tensor, by the same
// replay code any device uses. Passes over the trainable parameters per step: two perturbed reads and
// one update. A step whose loss or scalar is not finite is skipped and logged, never applied.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pocketllm/client/model.h"
#include "pocketllm/client/paired_forward.h"
#include "pocketllm/client/task.h"
#include "pocketllm/client/zo_adam.h"
#include "pocketllm/common/seeds.h"  // step_seed: the direction seed of step t, direction k
#include "pocketllm/common/update_entry.h"

namespace pocketllm {

enum class LrSchedule { kConstant, kLinear, kCosine };
// sgd: the SPSA step (lr times the projected gradient along each direction). adam: every coordinate's
// gradient from n_spsa >= d + 1 one-sided directions, then Adam (client/zo_adam.h).
enum class Optimizer { kSgd, kAdam };
bool parse_optimizer(const std::string& s, Optimizer* out);
const char* optimizer_name(Optimizer o);
bool parse_lr_schedule(const std::string& s, LrSchedule* out);
const char* lr_schedule_name(LrSchedule s);

struct TrainOptions {
  int steps = 100;
  int batch_size = 16;
  float lr = 1e-4f;
  float eps = 1e-3f;
  LrSchedule schedule = LrSchedule::kConstant;
  int warmup_steps = 0;
  int n_spsa = 1;           // directions per step, averaged
  float clip = 0.0f;        // |g| bound; 0 = off
  float weight_decay = 0.0f; // decoupled: theta <- theta * (1 - lr_t * wd) before the update, not on norms/biases
  Distribution dist = Distribution::kRademacher;
  uint64_t seed = 0;        // run seed: every direction derives from it
  uint64_t data_seed = 0;   // batch order
  // Classification: every epoch's order takes the classes in turn (each class shuffled on its own), so a
  // batch holds the classes in equal shares when the training set is balanced (e.g. k-shot). Cuts the
  // batch-to-batch label imbalance that otherwise dominates the projected gradient. Ignored for LM tasks.
  bool balanced = false;
  // Momentum on the scalar sequence (docs/training.md "Momentum"): step t also re-applies the directions of
  // the steps t-1 .. t-W (W = momentum_window), direction k of step s weighted momentum^(t-s) / S_t, with
  // S_t the sum of momentum^j over j = 0 .. min(W, t): an exponentially weighted average of the recent
  // projected gradients, each along its own direction. Every term is a logged (seed, coeff) entry, so
  // replay and federation see plain entries. 0 = off.
  float momentum = 0.0f;
  int momentum_window = 0;
  // Adam over a full set of directions (docs/training.md): n_spsa one-sided passes a step, n_spsa > d.
  Optimizer optimizer = Optimizer::kSgd;
  float adam_beta1 = 0.9f, adam_beta2 = 0.999f, adam_eps = 1e-8f;
  // adam: L * (theta - theta_0) added to each step's fitted gradient before the moments, an L2 pull toward
  // the weights the run started from (docs/training.md "Decay toward the start"); 0 = off.
  float decay_to_start = 0.0f;
  // Federated rounds: the server issues the directions. When set, step t uses seeds[t - first_step]
  // (one direction per step; t must be in [first_step, first_step + seeds.size())).
  std::vector<uint64_t> seeds;
  int first_step = 0;
  // The two passes of a step at once on a twin of the model (client/paired_forward.h): the same losses,
  // faster on two threads or more, one pass's activations more memory. kAuto decides by that memory.
  PairMode pair = PairMode::kAuto;
};

// Whether options can drive a run: steps >= 0, batch_size 1..65536, lr >= 0 and finite (0 leaves the
// weights where they are), eps positive and finite, warmup_steps >= 0, n_spsa 1..1024, clip and
// weight_decay finite and >= 0 with lr * weight_decay < 1 (a decay factor that keeps the sign), momentum
// in [0, 1) with its window 1..256; adam: n_spsa 2..65536, betas in [0, 1), adam_eps > 0, no momentum, clip
// or server-issued seeds; decay_to_start finite and >= 0, and 0 unless adam. The message names the first
// field that fails. Run directories check their spec with it when they are created and opened; a device
// checks a round's settings with it.
Status check_train_options(const TrainOptions& o);

struct StepRecord {
  int step = 0;
  std::vector<UpdateEntry> entries;  // empty when skipped
  std::vector<double> loss_plus, loss_minus;
  // With momentum: the step's own projected gradients (after clipping), one per direction, and the step
  // each entry's direction came from (the step's own n directions first, then older ones).
  std::vector<double> grads;
  std::vector<int> entry_steps;
  double lr = 0;
  float decay = 0;  // lr_t * weight_decay applied before the entries (0: none)
  bool skipped = false;
  std::string skip_reason;
};


// Whether decoupled weight decay applies to a tensor: not to norms or biases.
bool weight_decay_applies(const std::string& tensor_name);

// One logged step applied to tensors: theta <- theta * (1 - decay) on the decayed tensors (one float32
// multiplication per element), then the entries in order. Training and resume both use this.
void apply_step(ThreadPool* pool, Distribution dist, float decay, const std::vector<UpdateEntry>& entries,
                const std::vector<NamedTensor>& tensors);

class ZoTrainer {
 public:
  ZoTrainer(LanguageModel& model, Task& task, std::vector<size_t> train_examples, TrainOptions options, ThreadPool* pool);

  // Computes step t (it does not apply it: log first, then apply()).
  Result<StepRecord> step(int t);
  // The same into a caller-owned record whose storage is reused: after warm-up a step allocates nothing.
  Status step_into(int t, StepRecord* rec);
  // Applies a step (just computed, or logged by an earlier session): the same update either way.
  void apply(const StepRecord& rec);

  // A resumed run's momentum: the directions (seeds) and projected gradients of its logged steps, oldest
  // first (skipped steps with none). Only the last momentum_window steps are kept.
  void restore_history(int step, const std::vector<uint64_t>& seeds, const std::vector<double>& grads);
  // A resumed Adam run's moments: each logged (not skipped) step's one-sided losses, oldest first; the
  // gradient is fitted again from them exactly as the step fitted it. False when they do not fit.
  bool restore_adam(int step, const std::vector<double>& losses);

  float lr_at(int t) const;
  const std::vector<size_t>& batch_for_step(int t);
  const TrainOptions& options() const { return o_; }
  // How the two passes of a step run ("concurrent: …" / "sequential: …"); empty before the first step.
  std::string pair_mode() const;

 private:
  void build_epoch_order(int64_t epoch);
  void add_momentum_entries(StepRecord* rec);
  Status adam_step(int t, StepRecord* rec);
  void adam_seeds(int t);
  void pull_toward_start();
  void track_moved();

  LanguageModel& model_;
  Task& task_;
  std::unique_ptr<PairedForward> pair_;  // made at the first step
  std::vector<size_t> train_;
  TrainOptions o_;
  ThreadPool* pool_;
  std::vector<NamedTensor> tensors_;
  std::vector<int> labels_;  // label-word index of each training example (balanced order only)
  std::vector<std::vector<size_t>> class_members_;
  std::vector<size_t> perm_;
  int64_t perm_epoch_ = -1;
  std::vector<size_t> batch_;
  int longest_example_ = 1;  // tokens: the batch shape the pairing decision assumes
  struct PastStep {
    int step;
    std::vector<uint64_t> seeds;
    std::vector<double> grads;
  };
  std::vector<PastStep> history_;  // momentum: the last momentum_window steps, oldest first
  DirectionBasis basis_;            // adam: the step's directions
  AdamMoments adam_;
  std::vector<uint64_t> step_seeds_;
  std::vector<double> grad_, delta_, coeffs_;
  std::vector<double> moved_;       // adam with decay_to_start: theta - theta_0, minus the sum of the accepted deltas
};

// The default --momentum-window for a momentum: the smallest W with momentum^W <= 0.01 (at most 256).
int default_momentum_window(float momentum);

}  // namespace pocketllm
