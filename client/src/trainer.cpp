#include "pocketllm/client/trainer.h"

#include <algorithm>
#include <cmath>

#include "pocketllm/common/seeds.h"
#include "pocketllm/common/update_log.h"

namespace pocketllm {

bool parse_lr_schedule(const std::string& s, LrSchedule* out) {
  if (s == "constant") *out = LrSchedule::kConstant;
  else if (s == "linear") *out = LrSchedule::kLinear;
  else if (s == "cosine") *out = LrSchedule::kCosine;
  else return false;
  return true;
}

bool parse_optimizer(const std::string& s, Optimizer* out) {
  if (s == "sgd") *out = Optimizer::kSgd;
  else if (s == "adam") *out = Optimizer::kAdam;
  else return false;
  return true;
}

const char* optimizer_name(Optimizer o) { return o == Optimizer::kAdam ? "adam" : "sgd"; }

const char* lr_schedule_name(LrSchedule s) {
  return s == LrSchedule::kLinear ? "linear" : s == LrSchedule::kCosine ? "cosine" : "constant";
}

Status check_train_options(const TrainOptions& o) {
  auto bad = [](const std::string& what) { return invalid_argument(what); };
  if (o.steps < 0) return bad("steps must be >= 0, not " + std::to_string(o.steps));
  if (o.batch_size < 1 || o.batch_size > 65536) return bad("batch_size must be 1..65536, not " + std::to_string(o.batch_size));
  if (!(o.lr >= 0.0f) || !std::isfinite(o.lr)) return bad("lr must be >= 0 and a finite float32 number");
  if (!(o.eps > 0.0f) || !std::isfinite(o.eps)) return bad("eps must be a positive, finite float32 number");
  if (o.warmup_steps < 0) return bad("warmup_steps must be >= 0, not " + std::to_string(o.warmup_steps));
  if (o.optimizer == Optimizer::kAdam) {
    if (o.n_spsa < 2 || o.n_spsa > 65536) return bad("adam: n_spsa must be 2..65536 (more than the trainable elements), not " + std::to_string(o.n_spsa));
    if (!(o.adam_beta1 >= 0.0f && o.adam_beta1 < 1.0f) || !(o.adam_beta2 >= 0.0f && o.adam_beta2 < 1.0f))
      return bad("adam betas must be in [0, 1)");
    if (!(o.adam_eps > 0.0f) || !std::isfinite(o.adam_eps)) return bad("adam_eps must be a positive, finite float32 number");
    if (o.momentum > 0.0f) return bad("adam keeps its own momentum: momentum must be 0");
    if (o.clip > 0.0f) return bad("adam normalises every coordinate's step: clip must be 0");
    if (!o.seeds.empty()) return bad("adam chooses its own directions: server-issued seeds are not supported");
  } else if (o.n_spsa < 1 || o.n_spsa > 1024) {
    return bad("n_spsa must be 1..1024, not " + std::to_string(o.n_spsa));
  }
  if (!(o.clip >= 0.0f) || !std::isfinite(o.clip)) return bad("clip must be >= 0 and finite (0: off)");
  if (!(o.weight_decay >= 0.0f) || !std::isfinite(o.weight_decay) || !(static_cast<double>(o.lr) * o.weight_decay < 1.0))
    return bad("weight_decay must be >= 0 and finite, with lr * weight_decay < 1");
  if (!(o.decay_to_start >= 0.0f) || !std::isfinite(o.decay_to_start)) return bad("decay_to_start must be >= 0 and finite (0: off)");
  if (o.decay_to_start > 0.0f && o.optimizer != Optimizer::kAdam) return bad("decay_to_start needs optimizer adam");
  if (!(o.momentum >= 0.0f && o.momentum < 1.0f)) return bad("momentum must be in [0, 1)");
  if (o.momentum > 0.0f && (o.momentum_window < 1 || o.momentum_window > 256)) return bad("momentum_window must be 1..256");
  return Status::ok();
}

bool weight_decay_applies(const std::string& n) {
  auto ends = [&](const char* s) {
    const std::string e(s);
    return n.size() >= e.size() && n.compare(n.size() - e.size(), e.size(), e) == 0;
  };
  return !(ends(".bias") || n.find("norm") != std::string::npos || n.find("LayerNorm") != std::string::npos ||
           n.find(".ln_") != std::string::npos || n.find("ln_f.") != std::string::npos);
}

void apply_step(ThreadPool* pool, Distribution dist, float decay, const std::vector<UpdateEntry>& entries,
                const std::vector<NamedTensor>& tensors) {
  if (decay != 0.0f) {
    const float keep = 1.0f - decay;
    for (const auto& t : tensors) {
      if (!weight_decay_applies(t.name)) continue;
      for_each_span(t, [&](size_t first, size_t n) {  // only the rows that train decay
        const size_t chunk = size_t{1} << 16;
        float* d = t.data + first;
        parallel_for(pool, (n + chunk - 1) / chunk, [&](size_t c) {
          const size_t b = c * chunk, e = std::min(n, b + chunk);
          for (size_t i = b; i < e; ++i) d[i] *= keep;
        });
      });
    }
  }
  replay_entries(pool, dist, entries.data(), entries.size(), tensors);
}


ZoTrainer::ZoTrainer(LanguageModel& model, Task& task, std::vector<size_t> train, TrainOptions o, ThreadPool* pool)
    : model_(model), task_(task), train_(std::move(train)), o_(o), pool_(pool) {
  tensors_ = model_.weights().trainable_tensors();
  o_.batch_size = std::max(1, std::min<int>(o_.batch_size, static_cast<int>(train_.size())));
  o_.n_spsa = std::max(1, o_.n_spsa);
  for (size_t i : train_) longest_example_ = std::max(longest_example_, static_cast<int>(task_.example_tokens(i).size()));
  if (o_.momentum > 0.0f && o_.momentum_window <= 0) o_.momentum_window = default_momentum_window(o_.momentum);
  adam_ = AdamMoments(o_.adam_beta1, o_.adam_beta2, o_.adam_eps);
  if (o_.balanced) {
    // A classification task's labels are already label-word indices (0..C-1).
    const std::vector<int> all = task_.labels();
    if (!all.empty()) {
      for (size_t i : train_) labels_.push_back(all[i]);
      class_members_.resize(static_cast<size_t>(*std::max_element(labels_.begin(), labels_.end())) + 1);
    }
  }
}

int default_momentum_window(float momentum) {
  if (!(momentum > 0.0f) || !(momentum < 1.0f)) return 0;
  int w = 1;
  for (double tail = momentum; tail > 0.01 && w < 256; tail *= momentum) ++w;
  return w;
}

void ZoTrainer::restore_history(int step, const std::vector<uint64_t>& seeds, const std::vector<double>& grads) {
  if (o_.momentum <= 0.0f) return;
  history_.push_back({step, seeds, grads});
  while (!history_.empty() && history_.front().step < step - o_.momentum_window + 1) history_.erase(history_.begin());
}

float ZoTrainer::lr_at(int t) const {
  if (o_.warmup_steps > 0 && t < o_.warmup_steps) return o_.lr * static_cast<float>(t + 1) / static_cast<float>(o_.warmup_steps);
  const int span = std::max(1, o_.steps - o_.warmup_steps);
  const double frac = std::min(1.0, static_cast<double>(t - o_.warmup_steps) / span);
  switch (o_.schedule) {
    case LrSchedule::kLinear: return static_cast<float>(o_.lr * (1.0 - frac));
    case LrSchedule::kCosine: return static_cast<float>(o_.lr * 0.5 * (1.0 + std::cos(M_PI * frac)));
    default: return o_.lr;
  }
}

// The epoch's order: a seeded permutation; with balanced batches, that permutation split by class
// (keeping its order within each class) and dealt round-robin over the classes in label-word order.
void ZoTrainer::build_epoch_order(int64_t epoch) {
  const size_t n = train_.size();
  perm_.resize(n);
  for (size_t i = 0; i < n; ++i) perm_[i] = i;
  philox_shuffle(perm_, o_.data_seed, static_cast<uint32_t>(epoch), 0x64617461u);  // "data"
  if (labels_.empty()) return;
  for (auto& members : class_members_) members.clear();  // keeps capacity: no allocation after the first epoch
  for (size_t i : perm_) class_members_[static_cast<size_t>(labels_[i])].push_back(i);
  size_t out = 0;
  for (size_t round = 0; out < n; ++round)
    for (const auto& members : class_members_)
      if (round < members.size()) perm_[out++] = members[round];
}

const std::vector<size_t>& ZoTrainer::batch_for_step(int t) {
  // Example j of step t is position (t * B + j) of an endless sequence of epochs, each a seeded
  // permutation of the training examples: a pure function of (data seed, t), so resume needs no state.
  const size_t n = train_.size(), B = static_cast<size_t>(o_.batch_size);
  batch_.clear();
  for (size_t j = 0; j < B; ++j) {
    const uint64_t global = static_cast<uint64_t>(t) * B + j;
    const int64_t epoch = static_cast<int64_t>(global / n);
    if (epoch != perm_epoch_) {
      build_epoch_order(epoch);
      perm_epoch_ = epoch;
    }
    batch_.push_back(train_[perm_[global % n]]);
  }
  return batch_;
}

Result<StepRecord> ZoTrainer::step(int t) {
  StepRecord rec;
  POCKETLLM_RETURN_IF_ERROR(step_into(t, &rec));
  return rec;
}

Status ZoTrainer::step_into(int t, StepRecord* out) {
  StepRecord& rec = *out;
  rec.entries.clear();
  rec.loss_plus.clear();
  rec.loss_minus.clear();
  rec.skipped = false;
  rec.skip_reason.clear();
  rec.grads.clear();
  rec.entry_steps.clear();
  rec.step = t;
  rec.lr = lr_at(t);
  rec.decay = static_cast<float>(rec.lr * o_.weight_decay);
  task_.prepare(batch_for_step(t));
  if (!pair_)
    pair_ = std::make_unique<PairedForward>(model_, pool_, choose_pair(model_, pool_, o_.pair, o_.batch_size, longest_example_));
  if (o_.optimizer == Optimizer::kAdam) return adam_step(t, &rec);
  rec.entries.reserve(static_cast<size_t>(o_.n_spsa));
  rec.loss_plus.reserve(static_cast<size_t>(o_.n_spsa));
  rec.loss_minus.reserve(static_cast<size_t>(o_.n_spsa));
  double g_k = 0;
  for (int k = 0; k < o_.n_spsa; ++k) {
    uint64_t seed;
    if (o_.seeds.empty()) {
      seed = step_seed(o_.seed, static_cast<uint64_t>(t), static_cast<uint32_t>(k));
    } else {
      const int64_t i = static_cast<int64_t>(t) - o_.first_step;
      if (i < 0 || i >= static_cast<int64_t>(o_.seeds.size()) || o_.n_spsa != 1)
        return out_of_range("step " + std::to_string(t) + " has no server-issued seed");
      seed = o_.seeds[static_cast<size_t>(i)];
    }
    Perturbation plus{true, o_.dist, seed, o_.eps}, minus{true, o_.dist, seed, -o_.eps};
    LossResult lp, lm;
    POCKETLLM_RETURN_IF_ERROR(pair_->run(
        [this](ThreadPool* pool, LanguageModel& model, const Perturbation& p) { return task_.prepared_loss(pool, model, p); },
        plus, minus, &lp, &lm));
    rec.loss_plus.push_back(lp.mean());
    rec.loss_minus.push_back(lm.mean());
    g_k = (lp.mean() - lm.mean()) / (2.0 * o_.eps);
    if (!std::isfinite(lp.mean()) || !std::isfinite(lm.mean()) || !std::isfinite(g_k)) {
      rec.skipped = true;
      rec.skip_reason = "non-finite loss (L+ = " + std::to_string(lp.mean()) + ", L- = " + std::to_string(lm.mean()) + ")";
      rec.decay = 0;
      return Status::ok();
    }
    if (o_.clip > 0) g_k = std::max<double>(-o_.clip, std::min<double>(o_.clip, g_k));
    rec.entries.push_back({seed, static_cast<float>(rec.lr * g_k / o_.n_spsa)});
    rec.grads.push_back(g_k);
  }
  if (o_.momentum > 0.0f) add_momentum_entries(&rec);
  for (const auto& e : rec.entries) {
    if (!std::isfinite(e.coeff)) {
      rec.skipped = true;
      rec.skip_reason = "non-finite update coefficient";
      rec.entries.clear();
      rec.grads.clear();
      rec.entry_steps.clear();
      rec.decay = 0;
      if (o_.momentum > 0.0f && !history_.empty() && history_.back().step == t) history_.pop_back();
      return Status::ok();
    }
  }
  return Status::ok();
}

// Momentum: the step's own entries are rescaled to weight 1 / S_t and the directions of the steps
// t-1 .. t-W still in the history follow with weight momentum^(t-s) / S_t (docs/training.md "Momentum").
// The step joins the history here, once its scalars are final.
void ZoTrainer::add_momentum_entries(StepRecord* rec) {
  const int t = rec->step, window = std::max(1, o_.momentum_window);
  const double beta = o_.momentum;
  double sum = 0, w = 1;
  for (int j = 0; j <= std::min(window, t); ++j, w *= beta) sum += w;
  const double n = o_.n_spsa;
  for (size_t k = 0; k < rec->entries.size(); ++k) {
    rec->entries[k].coeff = static_cast<float>(rec->lr * rec->grads[k] / (n * sum));
    rec->entry_steps.push_back(t);
  }
  while (!history_.empty() && history_.front().step < t - window) history_.erase(history_.begin());
  for (auto it = history_.rbegin(); it != history_.rend(); ++it) {  // newest first
    const double weight = std::pow(beta, t - it->step) / sum;
    for (size_t k = 0; k < it->seeds.size(); ++k) {
      rec->entries.push_back({it->seeds[k], static_cast<float>(rec->lr * weight * it->grads[k] / n)});
      rec->entry_steps.push_back(it->step);
    }
  }
  std::vector<uint64_t> seeds;
  for (size_t k = 0; k < rec->grads.size(); ++k) seeds.push_back(rec->entries[k].seed);
  history_.push_back({t, std::move(seeds), rec->grads});
}

void ZoTrainer::adam_seeds(int t) {
  step_seeds_.resize(static_cast<size_t>(o_.n_spsa));
  for (int k = 0; k < o_.n_spsa; ++k) step_seeds_[static_cast<size_t>(k)] = step_seed(o_.seed, static_cast<uint64_t>(t), static_cast<uint32_t>(k));
}

// Adam over a full set of directions (client/zo_adam.h): n_spsa one-sided passes, two at a time; the fitted
// gradient moves the moments only once the step's entries are final, so a skipped step leaves them as
// they were (as resume, which sees no losses for it, rebuilds them).
Status ZoTrainer::adam_step(int t, StepRecord* out) {
  StepRecord& rec = *out;
  adam_seeds(t);
  const size_t n = step_seeds_.size();
  rec.loss_plus.resize(n);
  auto loss = [this](ThreadPool* pool, LanguageModel& model, const Perturbation& p) { return task_.prepared_loss(pool, model, p); };
  for (size_t k = 0; k < n; k += 2) {
    LossResult a, b;
    const Perturbation pa{true, o_.dist, step_seeds_[k], o_.eps};
    const Perturbation pb{true, o_.dist, step_seeds_[std::min(k + 1, n - 1)], o_.eps};
    POCKETLLM_RETURN_IF_ERROR(pair_->run(loss, pa, pb, &a, &b));
    rec.loss_plus[k] = a.mean();
    if (k + 1 < n) rec.loss_plus[k + 1] = b.mean();
  }
  auto skip = [&](const std::string& why) {
    rec.skipped = true;
    rec.skip_reason = why;
    rec.decay = 0;
    rec.entries.clear();
    return Status::ok();
  };
  for (double l : rec.loss_plus)
    if (!std::isfinite(l)) return skip("non-finite loss (" + std::to_string(l) + ")");
  basis_.build(o_.dist, step_seeds_, tensors_);
  if (!basis_.gradient(rec.loss_plus, o_.eps, &grad_))
    return skip("adam: the " + std::to_string(n) + " directions do not determine the gradient of " +
                std::to_string(basis_.coordinates()) + " trainable elements");
  pull_toward_start();
  AdamMoments next = adam_;
  next.update(grad_, rec.lr, &delta_);
  if (!basis_.coefficients(delta_, &coeffs_)) return skip("adam: non-finite update");
  for (size_t k = 0; k < n; ++k) {
    const float c = static_cast<float>(coeffs_[k]);
    if (!std::isfinite(c)) return skip("non-finite update coefficient");
    rec.entries.push_back({step_seeds_[k], c});
  }
  adam_ = std::move(next);
  track_moved();
  return Status::ok();
}

// decay_to_start: the displacement theta - theta_0 is kept as minus the sum of the accepted steps' deltas
// (their entries apply theta <- theta - U^T c = theta - delta, before float rounding), so a resumed run,
// which rebuilds it from the logged losses in restore_adam, adds the very same doubles.
void ZoTrainer::pull_toward_start() {
  if (!(o_.decay_to_start > 0.0f)) return;
  if (moved_.size() != grad_.size()) moved_.assign(grad_.size(), 0.0);
  const double l = o_.decay_to_start;
  for (size_t i = 0; i < grad_.size(); ++i) grad_[i] += l * moved_[i];
}

void ZoTrainer::track_moved() {
  if (!(o_.decay_to_start > 0.0f)) return;
  for (size_t i = 0; i < delta_.size(); ++i) moved_[i] -= delta_[i];
}

bool ZoTrainer::restore_adam(int step, const std::vector<double>& losses) {
  adam_seeds(step);
  if (losses.size() != step_seeds_.size()) return false;
  basis_.build(o_.dist, step_seeds_, tensors_);
  if (!basis_.gradient(losses, o_.eps, &grad_)) return false;
  pull_toward_start();
  adam_.update(grad_, lr_at(step), &delta_);
  track_moved();
  return true;
}

std::string ZoTrainer::pair_mode() const { return pair_ ? pair_->why() : std::string(); }

void ZoTrainer::apply(const StepRecord& rec) {
  if (rec.skipped) return;
  apply_step(pool_, o_.dist, rec.decay, rec.entries, tensors_);
}

}  // namespace pocketllm
