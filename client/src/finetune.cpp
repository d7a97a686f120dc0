#include "pocketllm/client/finetune.h"

#include <chrono>
#include <cmath>

#include "pocketllm/client/added_biases.h"
#include "pocketllm/client/trainable_rows.h"
#include "pocketllm/common/file_util.h"
#include "pocketllm/common/sha256.h"

namespace pocketllm {
namespace {

// Replays the run's logged steps after the snapshot onto the model (trainable tensors already F32).
Status bring_to_last_step(RunDir& run, LanguageModel& model, ThreadPool* pool) {
  auto snap = run.load_snapshot(model);
  if (!snap) return snap.status();
  int from = snap.value() + 1;
  if (snap.value() >= run.next_step()) from = 0;  // snapshot ahead of the log: cannot trust it
  if (from == 0 && snap.value() >= 0) {
    return corrupt(run.path() + ": snapshot is at step " + std::to_string(snap.value()) + " but the log ends at step " +
                   std::to_string(run.next_step() - 1));
  }
  replay_steps(pool, run.spec().train.dist, run.steps(), static_cast<size_t>(from), run.steps().size(),
               model.weights().trainable_tensors());
  return Status::ok();
}

// Prepares a base model for a run: checks (or records) its id, expands trainable-set shorthands
// against its layer count (a no-op for a resumed spec, which holds patterns), then makes the trainable
// tensors float32 copies.
Status prepare_base(LoadedModel& loaded, RunSpec* spec, std::string id) {
  if (id.empty()) id = loaded.model->weights().compute_model_id();
  if (!spec->model_id.empty() && spec->model_id != id) return mismatch(id);  // the caller words the error
  spec->model_id = id;
  spec->trainable = expand_trainable(spec->trainable, loaded.model->config().num_layers);
  if (auto added = add_zero_biases(*loaded.model, spec->added_biases); !added) return added.status();
  auto selected = select_trainable(*loaded.model, spec->trainable, spec->lora);
  if (!selected) return selected.status();
  POCKETLLM_RETURN_IF_ERROR(apply_step_scales(*loaded.model, spec->step_scales));
  // A resumed run's rows are resolved lists; a new run's "sample" is resolved once its data is loaded.
  if (trainable_rows_need_sample(spec->trainable_rows)) return Status::ok();
  return apply_trainable_rows(*loaded.model, spec->trainable_rows);
}

// Loads the base model from the spec's path and prepares it.
Result<LoadedModel> load_base(RunSpec* spec) {
  LoadOptions lo;
  lo.require_tokenizer = true;
  lo.quantize = spec->quantize;
  auto loaded = load_model(spec->model_path, lo);
  if (!loaded) return loaded.status();
  POCKETLLM_RETURN_IF_ERROR(prepare_base(loaded.value(), spec, ""));
  return loaded;
}

Status base_mismatch(const std::string& run_dir, const RunSpec& spec, const std::string& what, const Status& s) {
  if (s.code() != StatusCode::kMismatch) return s;
  return mismatch(run_dir + ": this run was made from base model " + spec.model_id.substr(0, 16) + "…, but " + what + " is " +
                  s.message().substr(0, 16) + "…");
}

// Adam over full directions: the trainable set must be small enough for its solves, and a run without
// --n-spsa gets default_adam_directions(d); one with too few for d coordinates is refused.
Status choose_adam_directions(LanguageModel& model, TrainOptions* t) {
  const size_t d = trainable_coordinates(model.weights().trainable_tensors());
  const std::string dd = std::to_string(d);
  if (d == 0) return invalid_argument("nothing to train: the trainable patterns select no tensor");
  if (d > kMaxAdamCoordinates)
    return invalid_argument("optimizer adam fits every coordinate's gradient from forward passes (more than d a step), so it takes "
                            "at most " + std::to_string(kMaxAdamCoordinates) + " trainable elements; this set has " + dd +
                            " (train norms or biases, or use --optimizer sgd)");
  if (t->n_spsa == 0) t->n_spsa = default_adam_directions(d);
  if (static_cast<size_t>(t->n_spsa) <= d)
    return invalid_argument("optimizer adam needs more directions a step than trainable elements (" + dd + "): --n-spsa " +
                            std::to_string(t->n_spsa) + " is too few (the default is " + std::to_string(default_adam_directions(d)) + ")");
  return Status::ok();
}

// The recipe's Adam when it applies to this trainable set (FinetuneRequest::recipe_adam): true after
// switching t to it.
bool use_recipe_adam(const RecipeAdam& r, LanguageModel& model, TrainOptions* t) {
  if (r.max_params <= 0 || t->momentum > 0 || t->clip > 0 || !t->seeds.empty()) return false;
  const size_t d = trainable_coordinates(model.weights().trainable_tensors());
  if (d == 0 || d > static_cast<size_t>(r.max_params)) return false;
  t->optimizer = Optimizer::kAdam;
  t->batch_size = r.batch_size;
  t->lr = static_cast<float>(r.lr);
  t->n_spsa = 0;  // default_adam_directions(d)
  t->decay_to_start = static_cast<float>(r.decay_to_start);
  return true;
}

}  // namespace

Result<std::string> file_sha256(const std::string& path) {
  auto bytes = read_file(path, size_t{1} << 34);
  if (!bytes) return bytes.status();
  return to_hex(sha256(bytes.value()));
}

Result<LoadedModel> load_run_model(const std::string& run_dir, RunDir* run_out, ThreadPool* pool) {
  auto run = RunDir::open(run_dir);
  if (!run) return run.status();
  RunSpec spec = run->spec();
  auto loaded = load_base(&spec);
  if (!loaded) return base_mismatch(run_dir, run->spec(), run->spec().model_path, loaded.status());
  POCKETLLM_RETURN_IF_ERROR(bring_to_last_step(run.value(), *loaded->model, pool));
  auto best = run->load_best(*loaded->model);  // the run's result, when it kept one
  if (!best) return best.status();
  if (best.value() > run->next_step())
    return corrupt(run_dir + ": best.safetensors is from step " + std::to_string(best.value()) + ", beyond the log's " +
                   std::to_string(run->next_step()) + " steps");
  if (run_out) *run_out = std::move(run.value());
  return loaded;
}

FinetuneSession::FinetuneSession(const FinetuneRequest& request) : request_(request), pool_(request.threads) {}
FinetuneSession::~FinetuneSession() = default;

// Loads the training data (and the eval data) as `spec` says, builds the tasks and draws the sample:
// fills task_, eval_task_, dropped_short_ and validation_, and returns the training indices.
Result<std::vector<size_t>> FinetuneSession::load_data(const RunSpec& spec, const std::string& data_path) {
  const FinetuneRequest& req = request_;
  if (!model_->tokenizer) return invalid_argument("fine-tuning needs the model's tokenizer, and none was loaded");
  LanguageModel& model = *model_->model;
  DatasetOptions dopt;
  dopt.need_label = spec.task.kind == "classify";
  auto data = load_dataset(data_path, dopt);
  if (!data) return data.status();
  auto dropped = drop_short_examples(&data.value(), spec.min_words);  // the eval set is never filtered
  if (!dropped) return dropped.status();
  dropped_short_ = dropped.value();
  auto task = make_task(data.value(), *model_->tokenizer, model, spec.task);
  if (!task) return task.status();
  task_ = std::move(task.value());
  data_report_.requested_max_length = spec.task.max_length;
  data_report_.max_length = std::min(spec.task.max_length, model.config().max_position_embeddings);
  data_report_.min_words = spec.min_words;
  data_report_.dropped_short = dropped_short_;
  data_report_.truncated = task_->truncated;
  data_report_.skipped_long = task_->skipped;
  if (!req.eval_data_path.empty()) {
    auto edata = load_dataset(req.eval_data_path, dopt);
    if (!edata) return edata.status();
    auto et = make_task(edata.value(), *model_->tokenizer, model, spec.task);
    if (!et) return et.status();
    eval_task_ = std::move(et.value());
    data_report_.eval_truncated = eval_task_->truncated;
    data_report_.eval_skipped = eval_task_->skipped;
  }
  std::vector<size_t> train = k_shot_indices(*task_, spec.k_shot, spec.train.data_seed);
  if (spec.validation.enabled())
    POCKETLLM_RETURN_IF_ERROR(carve_validation(*task_, spec.validation.examples, spec.train.data_seed, &train, &validation_));
  return train;
}

// long: opening a run in order — the run directory (created or resumed), the model (borrowed or loaded) at the last step, data checks, tasks, trainer.
Result<std::unique_ptr<FinetuneSession>> FinetuneSession::open(const FinetuneRequest& req) {
  std::unique_ptr<FinetuneSession> s(new FinetuneSession(req));
  std::vector<size_t> train;
  if (req.resume) {
    auto r = RunDir::open(req.out_dir);
    if (!r) return r.status();
    s->run_ = std::move(r.value());
    RunSpec spec = s->run_.spec();
    if (req.model) {
      if (Status st = prepare_base(*req.model, &spec, req.model_id); !st) return base_mismatch(req.out_dir, s->run_.spec(), "the given model", st);
      s->model_ = req.model;
    } else {
      auto l = load_base(&spec);
      if (!l) return base_mismatch(req.out_dir, s->run_.spec(), s->run_.spec().model_path, l.status());
      s->owned_ = std::move(l.value());
      s->model_ = &s->owned_;
    }
    POCKETLLM_RETURN_IF_ERROR(bring_to_last_step(s->run_, *s->model_->model, &s->pool_));
    if (req.extend_to_steps > 0) POCKETLLM_RETURN_IF_ERROR(s->run_.extend_steps(req.extend_to_steps));
    const RunSpec& saved = s->run_.spec();
    const std::string data_path = req.data_path_override.empty() ? saved.data_path : req.data_path_override;
    auto sha = file_sha256(data_path);
    if (!sha) return sha.status();
    if (sha.value() != saved.data_sha256)
      return mismatch(data_path + " changed since the run started (SHA-256 differs); resuming would train on other data");
    auto t = s->load_data(saved, data_path);
    if (!t) return t.status();
    train = std::move(t.value());
  } else {
    RunSpec spec = req.spec;
    spec.model_id.clear();
    // Shorthands ("last:2", "attention", …) become explicit patterns in the spec, so the run does not
    // depend on how they expand in a later version.
    if (req.model) {
      POCKETLLM_RETURN_IF_ERROR(prepare_base(*req.model, &spec, req.model_id));
      s->model_ = req.model;
      if (spec.model_path.empty()) spec.model_path = req.model->path;
    } else {
      auto l = load_base(&spec);
      if (!l) return l.status();
      s->owned_ = std::move(l.value());
      s->model_ = &s->owned_;
    }
    spec.model_format = s->model_->format;
    auto t = s->load_data(spec, spec.data_path);
    if (!t) return t.status();
    train = std::move(t.value());
    if (trainable_rows_need_sample(spec.trainable_rows)) {  // "sample" becomes the sample's row lists in spec.json
      auto rows = resolve_trainable_rows(*s->model_->model, spec.trainable_rows, s->task_.get(), train);
      if (!rows) return rows.status();
      spec.trainable_rows = rows.value();
      POCKETLLM_RETURN_IF_ERROR(apply_trainable_rows(*s->model_->model, spec.trainable_rows));
    }
    // The recipe's Adam brings its own batch, lr and directions (chosen below); else the lr rule.
    if (!use_recipe_adam(req.recipe_adam, *s->model_->model, &spec.train) && req.lr_times_params > 0) {
      size_t params = s->model_->model->weights().trainable_numel();
      if (params == 0) return invalid_argument("nothing to train: the trainable patterns select no tensor");
      spec.train.lr = static_cast<float>(req.lr_times_params / static_cast<double>(params));
    }
    if (spec.train.optimizer == Optimizer::kAdam)
      POCKETLLM_RETURN_IF_ERROR(choose_adam_directions(*s->model_->model, &spec.train));
    auto sha = file_sha256(spec.data_path);
    if (!sha) return sha.status();
    spec.data_sha256 = sha.value();
    auto r = RunDir::create(req.out_dir, spec);
    if (!r) return r.status();
    s->run_ = std::move(r.value());
  }
  if (s->run_.spec().validation.enabled()) {
    auto best = s->run_.best_step(&s->best_loss_);  // a resumed run keeps competing with its best so far
    if (!best) return best.status();
    s->best_step_ = best.value();
  }
  s->train_examples_ = train.size();
  TrainOptions train_options = s->run_.spec().train;
  train_options.pair = s->request_.pair;
  s->trainer_ = std::make_unique<ZoTrainer>(*s->model_->model, *s->task_, std::move(train), train_options, &s->pool_);
  const TrainOptions& to = s->run_.spec().train;
  if (to.momentum > 0.0f) {  // a resumed run re-applies the directions of its last logged steps
    const auto& steps = s->run_.steps();
    const size_t n = static_cast<size_t>(std::max(1, to.n_spsa));
    for (size_t i = steps.size() > static_cast<size_t>(to.momentum_window) ? steps.size() - to.momentum_window : 0; i < steps.size(); ++i) {
      const LoggedStep& st = steps[i];
      if (st.entries.empty()) continue;  // skipped
      if (st.grads.size() != n || st.entries.size() < n)
        return corrupt(s->run_.path() + "/log.jsonl: step " + std::to_string(st.step) +
                       " has no projected gradients (\"g\"), which a momentum run needs to resume");
      std::vector<uint64_t> seeds;
      for (size_t k = 0; k < n; ++k) seeds.push_back(st.entries[k].seed);
      s->trainer_->restore_history(st.step, seeds, st.grads);
    }
  }
  if (to.optimizer == Optimizer::kAdam) {  // a resumed Adam run fits every logged step's gradient again
    for (const LoggedStep& st : s->run_.steps()) {
      if (st.entries.empty()) continue;  // skipped: it never moved the moments
      if (!s->trainer_->restore_adam(st.step, st.losses))
        return corrupt(s->run_.path() + "/log.jsonl: step " + std::to_string(st.step) +
                       ": its losses do not give the gradient an Adam run needs to resume");
    }
  }
  return s;
}

Status FinetuneSession::evaluate(int step, FinetuneResult* result, const EvalFn& on_eval, int selected_step) {
  if (!eval_task_) return Status::ok();
  auto r = eval_task_->evaluate(&pool_, *model_->model, request_.eval_batch_size);
  if (!r) return r.status();
  EvalPoint p{step, r.value()};
  p.selected_step = selected_step;
  result->evals.push_back(p);
  nlohmann::json line = {{"step", step}, {"eval_loss", r->loss}, {"eval_examples", r->count}};
  if (r->accuracy >= 0) line["eval_accuracy"] = r->accuracy;
  else line["eval_perplexity"] = r->perplexity();
  if (selected_step >= 0) line["selected_step"] = selected_step;
  POCKETLLM_RETURN_IF_ERROR(run_.append_metrics(line));
  if (on_eval) on_eval(p);
  return Status::ok();
}

Status FinetuneSession::validate(int step, FinetuneResult* result, const EvalFn& on_eval) {
  auto r = task_->evaluate_examples(&pool_, *model_->model, validation_, request_.eval_batch_size);
  if (!r) return r.status();
  EvalPoint p{step, r.value()};
  p.validation = true;
  last_validated_ = step;
  nlohmann::json line = {{"step", step}, {"validation_loss", r->loss}, {"validation_examples", r->count}};
  if (r->accuracy >= 0) line["validation_accuracy"] = r->accuracy;
  // A non-finite loss never becomes the best; ties keep the earlier (shorter) run.
  if (std::isfinite(r->loss) && (best_step_ < 0 || r->loss < best_loss_)) {
    POCKETLLM_RETURN_IF_ERROR(run_.sync());  // the steps it was reached by are durable before it is
    POCKETLLM_RETURN_IF_ERROR(run_.write_best(step, r->loss, *model_->model));
    best_step_ = step;
    best_loss_ = r->loss;
    since_best_ = 0;
    line["best"] = true;
  } else {
    ++since_best_;
  }
  POCKETLLM_RETURN_IF_ERROR(run_.append_metrics(line));
  result->evals.push_back(p);
  if (on_eval) on_eval(p);
  return Status::ok();
}

Status FinetuneSession::finish(FinetuneResult* result, const EvalFn& on_eval) {
  LanguageModel& model = *model_->model;
  const int last = run_.next_step();
  POCKETLLM_RETURN_IF_ERROR(run_.write_snapshot(last - 1, model));  // the log's end: what a resume starts from
  if (!run_.spec().validation.enabled()) return evaluate(last, result, on_eval);
  if (last_validated_ != last) POCKETLLM_RETURN_IF_ERROR(validate(last, result, on_eval));
  auto best = run_.load_best(model, &best_loss_);
  if (!best) return best.status();
  if (best.value() < 0) return corrupt(run_.path() + ": best.safetensors vanished during the run");
  best_step_ = best.value();
  finished_ = true;
  result->best_step = best_step_;
  result->best_validation_loss = best_loss_;
  return evaluate(last, result, on_eval, best_step_);
}

// long: the run loop (steps, evaluations, snapshots, stop) in execution order; its parts share the run state.
Result<FinetuneResult> FinetuneSession::run(const ProgressFn& on_step, const EvalFn& on_eval, int max_steps) {
  const RunSpec& spec = run_.spec();
  LanguageModel& model = *model_->model;
  FinetuneResult result;
  result.dropped_short = dropped_short_;
  result.data = data_report_;
  result.train_examples = train_examples_;
  if (finished_) {  // the model already holds the run's result
    result.steps_done = run_.next_step();
    result.best_step = best_step_;
    result.best_validation_loss = best_loss_;
    return result;
  }
  const int first = run_.next_step();
  const ValidationOptions& val = spec.validation;
  if (request_.eval_at_start && first == 0) POCKETLLM_RETURN_IF_ERROR(evaluate(0, &result, on_eval));
  if (val.enabled() && first == 0 && best_step_ < 0) POCKETLLM_RETURN_IF_ERROR(validate(0, &result, on_eval));
  const auto t0 = std::chrono::steady_clock::now();
  const int last = max_steps > 0 ? std::min(spec.train.steps, first + max_steps) : spec.train.steps;
  StepRecord* rec = &record_;
  int skipped_in_a_row = 0;
  for (int t = first; t < last; ++t) {
    POCKETLLM_RETURN_IF_ERROR(trainer_->step_into(t, rec));
    // Log first, then apply: a crash in between is repaired by replaying the log on resume.
    POCKETLLM_RETURN_IF_ERROR(run_.append(*rec));
    trainer_->apply(*rec);
    if (rec->skipped) ++result.skipped_steps;
    skipped_in_a_row = rec->skipped ? skipped_in_a_row + 1 : 0;
    if (skipped_in_a_row >= kMaxSkippedInARow) {
      POCKETLLM_RETURN_IF_ERROR(run_.sync());
      const int from = t + 1 - skipped_in_a_row;
      const std::string why = from == 0 ? "from the first step, before any update: the model's loss is not finite (its weights or "
                                          "activations hold NaN or infinity — check the model file) or eps is too large for it"
                                        : "after step " + std::to_string(from - 1) + ": the run has diverged or eps is too large "
                                          "(lower lr or eps; the log is intact and the run resumes from step " + std::to_string(t + 1) + ")";
      return invalid_argument(run_.path() + ": steps " + std::to_string(from) + ".." + std::to_string(t) + " all skipped (" +
                              rec->skip_reason + ") " + why);
    }
    if (spec.snapshot_every > 0 && (t + 1) % spec.snapshot_every == 0 && t + 1 < spec.train.steps) {
      POCKETLLM_RETURN_IF_ERROR(run_.sync());
      POCKETLLM_RETURN_IF_ERROR(run_.write_snapshot(t, model));
    }
    if (request_.eval_every > 0 && (t + 1) % request_.eval_every == 0 && t + 1 < spec.train.steps)
      POCKETLLM_RETURN_IF_ERROR(evaluate(t + 1, &result, on_eval));
    if (val.enabled() && (t + 1) % val.interval(spec.train.steps) == 0) {
      POCKETLLM_RETURN_IF_ERROR(validate(t + 1, &result, on_eval));
      if (val.patience > 0 && since_best_ >= val.patience) result.early_stopped = true;
    }
    StepProgress p;
    p.step = t;
    p.total = spec.train.steps;
    double lp = 0, lm = 0;
    for (double v : rec->loss_plus) lp += v;
    for (double v : rec->loss_minus) lm += v;
    const size_t nk = std::max<size_t>(1, rec->loss_plus.size() + rec->loss_minus.size());
    p.loss = (lp + lm) / static_cast<double>(nk);
    p.skipped = rec->skipped;
    p.first_step = first;
    p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (on_step && !on_step(p)) {
      result.stopped = true;
      break;
    }
    if (result.early_stopped) break;
  }
  POCKETLLM_RETURN_IF_ERROR(run_.sync());
  result.steps_done = run_.next_step();
  result.pair_mode = trainer_->pair_mode();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!result.stopped && (run_.next_step() >= spec.train.steps || result.early_stopped))
    POCKETLLM_RETURN_IF_ERROR(finish(&result, on_eval));
  return result;
}

std::vector<std::string> describe(const DataReport& d) {
  std::vector<std::string> out;
  const std::string max = std::to_string(d.max_length);
  if (d.requested_max_length > d.max_length)
    out.push_back("max length " + std::to_string(d.requested_max_length) + " is over the model's " + max +
                  " positions: examples are cut at " + max + " tokens");
  if (d.dropped_short > 0)
    out.push_back(std::to_string(d.dropped_short) + " training examples have fewer than " + std::to_string(d.min_words) +
                  " words (min words) and are not used");
  if (d.truncated > 0)
    out.push_back(std::to_string(d.truncated) + " training examples are longer than " + max +
                  " tokens and were cut to it (overlong skip drops them instead)");
  if (d.skipped_long > 0)
    out.push_back(std::to_string(d.skipped_long) + " training examples are not used: longer than " + max +
                  " tokens (overlong skip) or with nothing to score");
  if (d.eval_truncated > 0 || d.eval_skipped > 0)
    out.push_back("eval data: " + std::to_string(d.eval_truncated) + " examples cut to " + max + " tokens, " +
                  std::to_string(d.eval_skipped) + " not used");
  return out;
}

Result<FinetuneResult> run_finetune(const FinetuneRequest& req, const ProgressFn& on_step, const EvalFn& on_eval) {
  auto session = FinetuneSession::open(req);
  if (!session) return session.status();
  return session.value()->run(on_step, on_eval);
}

}  // namespace pocketllm
