#include "pocketllm/client/finetune.h"

#include <chrono>

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

// Loads the base model, computes its id over the stored canonical tensors, expands trainable-set
// shorthands against its layer count (a no-op for a resumed spec, which holds patterns), then makes the
// trainable tensors float32 copies.
Result<LoadedModel> load_base(RunSpec* spec) {
  LoadOptions lo;
  lo.require_tokenizer = true;
  auto loaded = load_model(spec->model_path, lo);
  if (!loaded) return loaded.status();
  const std::string id = loaded->model->weights().compute_model_id();
  if (!spec->model_id.empty() && spec->model_id != id) return mismatch(id);  // the caller words the error
  spec->model_id = id;
  spec->trainable = expand_trainable(spec->trainable, loaded->model->config().num_layers);
  auto selected = loaded->model->weights().make_trainable(NamePatterns(spec->trainable));
  if (!selected) return selected.status();
  return loaded;
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
  if (!loaded) {
    if (loaded.status().code() != StatusCode::kMismatch) return loaded.status();
    return mismatch(run_dir + ": this run was made from base model " + run->spec().model_id.substr(0, 16) + "…, but " +
                    run->spec().model_path + " is " + loaded.status().message().substr(0, 16) + "…");
  }
  POCKETLLM_RETURN_IF_ERROR(bring_to_last_step(run.value(), *loaded->model, pool));
  if (run_out) *run_out = std::move(run.value());
  return loaded;
}

// long: the run loop (resume, steps, evaluations, snapshots, stop) in execution order; its parts share the run state.
Result<FinetuneResult> run_finetune(const FinetuneRequest& req, const ProgressFn& on_step, const EvalFn& on_eval) {
  ThreadPool pool(req.threads);
  RunDir run;
  LoadedModel loaded;
  if (req.resume) {
    auto l = load_run_model(req.out_dir, &run, &pool);
    if (!l) return l.status();
    loaded = std::move(l.value());
  } else {
    RunSpec spec = req.spec;
    spec.model_id.clear();
    // Shorthands ("last:2", "attention", …) become explicit patterns in the spec, so the run does not
    // depend on how they expand in a later version.
    auto l = load_base(&spec);
    if (!l) return l.status();
    loaded = std::move(l.value());
    spec.model_format = loaded.format;
    auto sha = file_sha256(spec.data_path);
    if (!sha) return sha.status();
    spec.data_sha256 = sha.value();
    auto r = RunDir::create(req.out_dir, spec);
    if (!r) return r.status();
    run = std::move(r.value());
  }
  if (req.resume && req.extend_to_steps > 0) POCKETLLM_RETURN_IF_ERROR(run.extend_steps(req.extend_to_steps));
  const RunSpec& spec = run.spec();
  if (req.resume) {
    auto sha = file_sha256(spec.data_path);
    if (!sha) return sha.status();
    if (sha.value() != spec.data_sha256)
      return mismatch(spec.data_path + " changed since the run started (SHA-256 differs); resuming would train on other data");
  }
  LanguageModel& model = *loaded.model;

  DatasetOptions dopt;
  dopt.need_label = spec.task.kind == "classify";
  auto data = load_dataset(spec.data_path, dopt);
  if (!data) return data.status();
  auto task = make_task(data.value(), *loaded.tokenizer, model, spec.task);
  if (!task) return task.status();
  std::unique_ptr<Task> eval_task;
  if (!req.eval_data_path.empty()) {
    auto edata = load_dataset(req.eval_data_path, dopt);
    if (!edata) return edata.status();
    auto et = make_task(edata.value(), *loaded.tokenizer, model, spec.task);
    if (!et) return et.status();
    eval_task = std::move(et.value());
  }
  std::vector<size_t> train = k_shot_indices(*task.value(), spec.k_shot, spec.train.data_seed);
  ZoTrainer trainer(model, *task.value(), train, spec.train, &pool);

  FinetuneResult result;
  auto evaluate = [&](int step) -> Status {
    if (!eval_task) return Status::ok();
    auto r = eval_task->evaluate(&pool, model, req.eval_batch_size);
    if (!r) return r.status();
    EvalPoint p{step, r.value()};
    result.evals.push_back(p);
    nlohmann::json line = {{"step", step}, {"eval_loss", r->loss}, {"eval_examples", r->count}};
    if (r->accuracy >= 0) line["eval_accuracy"] = r->accuracy;
    else line["eval_perplexity"] = r->perplexity();
    POCKETLLM_RETURN_IF_ERROR(run.append_metrics(line));
    if (on_eval) on_eval(p);
    return Status::ok();
  };

  const int first = run.next_step();
  if (req.eval_at_start && first == 0) POCKETLLM_RETURN_IF_ERROR(evaluate(0));
  const auto t0 = std::chrono::steady_clock::now();
  StepRecord step_record;  // reused: the step itself allocates nothing after warm-up
  StepRecord* rec = &step_record;
  for (int t = first; t < spec.train.steps; ++t) {
    POCKETLLM_RETURN_IF_ERROR(trainer.step_into(t, rec));
    // Log first, then apply: a crash in between is repaired by replaying the log on resume.
    POCKETLLM_RETURN_IF_ERROR(run.append(*rec));
    trainer.apply(*rec);
    if (rec->skipped) ++result.skipped_steps;
    if (spec.snapshot_every > 0 && (t + 1) % spec.snapshot_every == 0 && t + 1 < spec.train.steps) {
      POCKETLLM_RETURN_IF_ERROR(run.sync());
      POCKETLLM_RETURN_IF_ERROR(run.write_snapshot(t, model));
    }
    if (req.eval_every > 0 && (t + 1) % req.eval_every == 0 && t + 1 < spec.train.steps) POCKETLLM_RETURN_IF_ERROR(evaluate(t + 1));
    StepProgress p;
    p.step = t;
    p.total = spec.train.steps;
    double lp = 0, lm = 0;
    for (double v : rec->loss_plus) lp += v;
    for (double v : rec->loss_minus) lm += v;
    const size_t nk = std::max<size_t>(1, rec->loss_plus.size());
    p.loss = (lp + lm) / (2.0 * nk);
    p.skipped = rec->skipped;
    p.first_step = first;
    p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (on_step && !on_step(p)) {
      result.stopped = true;
      break;
    }
  }
  POCKETLLM_RETURN_IF_ERROR(run.sync());
  result.steps_done = run.next_step();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!result.stopped && run.next_step() >= spec.train.steps) {
    POCKETLLM_RETURN_IF_ERROR(run.write_snapshot(run.next_step() - 1, model));
    POCKETLLM_RETURN_IF_ERROR(evaluate(run.next_step()));
  }
  return result;
}

}  // namespace pocketllm
