// Training sessions: a run directory opened on a model in memory, trained in place, resumable.
#include <sys/stat.h>

#include <cmath>

#include "abi.h"
#include "pocketllm/client/finetune.h"
#include "pocketllm/client/memory_estimate.h"
#include "pocketllm/client/paired_forward.h"
#include "pocketllm/client/recipe.h"

using namespace pllm_abi;

struct pllm_session {
  pllm_model* model = nullptr;
  std::unique_ptr<pocketllm::FinetuneSession> session;
  double last_eval_loss = std::nan("");
};

namespace {

pllm_status check_texts(const pllm_session_params& p) {
  if (pllm_status s = check_text(p.run_dir, "run_dir", false); s != PLLM_OK) return s;
  for (auto [s, what] : {std::pair{p.data_path, "data_path"}, {p.eval_data_path, "eval_data_path"}, {p.task, "task"},
                         {p.labels, "labels"}, {p.prompt_template, "prompt_template"}, {p.trainable, "trainable"},
                         {p.lora_targets, "lora_targets"}, {p.preset, "preset"}, {p.schedule, "schedule"}})
    if (pllm_status st = check_optional_text(s, what); st != PLLM_OK) return st;
  return PLLM_OK;
}

// What the params leave to the recipe of their task and preset (docs/training.md, "Default recipes"),
// filled in; the strings the params then point to live here.
struct Resolved {
  std::string task, trainable, prompt_template, labels;
  pocketllm::LrSchedule schedule = pocketllm::LrSchedule::kConstant;
  double lr_times_params = 0;  // > 0: lr = this / trainable parameters
  pocketllm::RecipeAdam adam;  // the recipe's Adam for a small trainable set, when batch and lr are the recipe's
  bool balanced = false;
};

pllm_status resolve_recipe(pllm_session_params* p, Resolved* r) {
  const std::string preset = p->preset ? p->preset : "";
  std::string preset_template, preset_labels;
  if (!preset.empty() && !pocketllm::classification_preset(preset, &preset_template, &preset_labels))
    return fail(PLLM_ERR_INVALID_ARGUMENT, "preset must be \"sst2\" or \"agnews\" (or NULL)");
  r->task = p->task ? p->task : (preset.empty() ? "lm" : "classify");
  if (r->task != "lm" && r->task != "classify") return fail(PLLM_ERR_INVALID_ARGUMENT, "task must be \"lm\" or \"classify\"");
  const pocketllm::Recipe recipe = pocketllm::default_recipe(r->task, preset);
  r->prompt_template = p->prompt_template ? p->prompt_template : (preset.empty() ? "{text} It was" : preset_template);
  r->labels = p->labels ? p->labels : preset_labels;
  const bool adapters = p->lora_rank > 0;
  r->trainable = p->trainable ? p->trainable : (adapters ? "none" : recipe.trainable);
  if (adapters && r->trainable == "*") r->trainable = "none";  // the adapters alone unless told otherwise
  if (p->batch_size == 0 && p->lr == 0) r->adam = recipe.adam;
  if (p->batch_size == 0) p->batch_size = recipe.batch_size;
  if (p->lr == 0) {
    p->lr = static_cast<float>(recipe.lr);
    r->lr_times_params = recipe.lr_times_params;
  }
  r->schedule = recipe.schedule;
  if (p->schedule && !pocketllm::parse_lr_schedule(p->schedule, &r->schedule))
    return fail(PLLM_ERR_INVALID_ARGUMENT, "schedule must be \"constant\", \"linear\" or \"cosine\" (or NULL)");
  if (p->balanced < -1 || p->balanced > 1) return fail(PLLM_ERR_INVALID_ARGUMENT, "balanced must be -1 (the recipe's), 0 or 1");
  r->balanced = p->balanced == -1 ? recipe.balanced : p->balanced == 1;
  if (p->min_words == -1) p->min_words = recipe.min_words;
  if (p->validation_examples == -1) {
    p->validation_examples = recipe.validation;
    if (p->validation_examples > 0 && p->patience == 0) p->patience = recipe.patience;
  }
  p->task = r->task.c_str();
  p->prompt_template = r->prompt_template.c_str();
  p->labels = r->labels.c_str();
  p->trainable = r->trainable.c_str();
  return PLLM_OK;
}

pllm_status check_session_params(const pllm_session_params& p) {
  if (p.steps < 1 || p.steps > 100000000 || p.batch_size < 1 || p.batch_size > 4096 || !(p.eps > 0) || !std::isfinite(p.eps) ||
      !(p.lr > 0) || !std::isfinite(p.lr) || p.max_length < 2 || p.max_length > 65536)
    return fail(PLLM_ERR_INVALID_ARGUMENT,
                "steps must be 1..1e8, batch_size 1..4096 (0: the recipe's), eps > 0 and finite, lr > 0 and finite (0: the "
                "recipe's), max_length 2..65536");
  if (p.lora_rank < 0 || p.lora_rank > 1024 || !std::isfinite(p.lora_alpha) || p.lora_alpha < 0 || p.lora_alpha > 1e6)
    return fail(PLLM_ERR_INVALID_ARGUMENT, "lora_rank must be 0..1024 and lora_alpha in [0, 1e6]");
  if (p.validation_examples < 0 || p.validate_every < 0 || p.patience < 0)
    return fail(PLLM_ERR_INVALID_ARGUMENT, "validation_examples, validate_every and patience must be >= 0");
  if (p.validation_examples == 0 && (p.validate_every > 0 || p.patience > 0))
    return fail(PLLM_ERR_INVALID_ARGUMENT, "validate_every and patience need validation_examples > 0");
  if (p.min_words < 0 || p.k_shot < 0 || p.k_shot > (1 << 30))
    return fail(PLLM_ERR_INVALID_ARGUMENT, "min_words must be >= 0 (-1: the recipe's) and k_shot 0..2^30");
  return PLLM_OK;
}

// The run's spec from the (resolved) params (a new run).
pllm_status spec_from(const pllm_session_params& p, const Resolved& r, pocketllm::RunSpec* s) {
  if (!p.data_path) return fail(PLLM_ERR_INVALID_ARGUMENT, "data_path is required for a new run");
  s->data_path = p.data_path;
  s->trainable = r.trainable;
  if (p.lora_rank > 0) {
    s->lora.rank = p.lora_rank;
    s->lora.alpha = p.lora_alpha;
    if (p.lora_targets) s->lora.targets = p.lora_targets;
    s->lora.init_seed = p.lora_init_seed;
    if (pocketllm::Status st = s->lora.validate(); !st) return fail(PLLM_ERR_INVALID_ARGUMENT, st.message());
  }
  s->k_shot = p.k_shot;
  s->min_words = p.min_words;
  s->train.data_seed = p.data_seed;
  s->train.schedule = r.schedule;
  s->train.balanced = r.balanced;
  s->validation.examples = p.validation_examples;
  s->validation.every = p.validate_every;
  s->validation.patience = p.patience;
  s->train.steps = p.steps;
  s->train.batch_size = p.batch_size;
  s->train.lr = p.lr;
  s->train.eps = p.eps;
  s->train.seed = p.seed;
  s->task.kind = r.task;
  s->task.max_length = p.max_length;
  s->task.prompt_template = r.prompt_template;
  if (s->task.kind == "classify") {
    auto lw = pocketllm::parse_label_words(r.labels);
    if (!lw) return fail(lw.status());
    s->task.label_words = lw.value();
  }
  return PLLM_OK;
}

// How a step's two forward passes run (client/paired_forward.h): without a budget the engine's default
// (auto); with one, at once when the budget holds a second pass's activations too, else one after the
// other. Over budget even one after the other: refused.
pllm_status check_budget(const pllm_model* m, const pllm_session_params& p, pocketllm::PairMode* pair) {
  const std::string patterns = pocketllm::expand_trainable(p.trainable, m->loaded.model->config().num_layers);
  const auto b = pocketllm::pair_under_budget(*m->loaded.model, pocketllm::NamePatterns(patterns), p.batch_size, p.max_length,
                                              p.memory_budget_bytes);
  *pair = b.pair;
  if (b.fits) return PLLM_OK;
  return fail(PLLM_ERR_MEMORY_BUDGET, "this session needs " + b.estimate.describe() + ", over the memory budget of " +
                                          std::to_string(p.memory_budget_bytes) + " bytes");
}

bool holds_run(const std::string& dir) {
  struct stat st {};
  return ::stat((dir + "/spec.json").c_str(), &st) == 0;
}

}  // namespace

extern "C" {

pllm_session_params pllm_session_default_params(void) {
  pllm_session_params p{};
  p.struct_size = sizeof p;
  p.steps = 100;  // task, template, labels, trainable, batch_size, lr: the recipe's (NULL / 0)
  p.eps = 1e-3f;
  p.max_length = 256;
  p.lora_targets = "q_proj,v_proj";
  p.validation_examples = -1;
  p.balanced = -1;
  p.min_words = -1;
  return p;
}

pllm_status pllm_session_open(pllm_model* model, const pllm_session_params* params, const pllm_control* control, pllm_session** out) {
  if (out) *out = nullptr;
  return guarded(control, [&] {
    if (!out) return fail(PLLM_ERR_INVALID_ARGUMENT, "out is required");
    ModelCall call(model);
    if (pllm_status s = call.status(); s != PLLM_OK) return s;
    if (pllm_status s = check_model_free(model); s != PLLM_OK) return s;
    pllm_session_params p;
    if (pllm_status s = read_params(params, pllm_session_default_params(), &p, "pllm_session_params"); s != PLLM_OK) return s;
    if (pllm_status s = check_texts(p); s != PLLM_OK) return s;
    Resolved r;
    if (pllm_status s = resolve_recipe(&p, &r); s != PLLM_OK) return s;
    if (pllm_status s = check_session_params(p); s != PLLM_OK) return s;
    pocketllm::PairMode pair = pocketllm::PairMode::kAuto;
    if (pllm_status s = check_budget(model, p, &pair); s != PLLM_OK) return s;
    pocketllm::FinetuneRequest req;
    req.pair = pair;
    req.out_dir = p.run_dir;
    req.resume = holds_run(p.run_dir);
    req.threads = model->n_threads;
    req.model = &model->loaded;
    req.model_id = model->model_id;
    if (p.eval_data_path) req.eval_data_path = p.eval_data_path;
    if (req.resume) {
      if (p.data_path) req.data_path_override = p.data_path;
    } else if (pllm_status s = spec_from(p, r, &req.spec); s != PLLM_OK) {
      return s;
    } else {
      req.lr_times_params = r.lr_times_params;
      req.recipe_adam = r.adam;
    }
    auto session = pocketllm::FinetuneSession::open(req);
    // Opening may have replayed the log into the model's trainable tensors even when it then failed.
    if (req.resume) model->trained = true;
    if (!session) return fail(session.status());
    for (const std::string& line : pocketllm::describe(session.value()->data_report())) log(PLLM_LOG_WARN, line);
    log(PLLM_LOG_INFO, "session " + req.out_dir + ": " + std::to_string(session.value()->train_examples()) +
                           " training examples, step " + std::to_string(session.value()->steps_done()) + " of " +
                           std::to_string(session.value()->total_steps()));
    auto h = std::make_unique<pllm_session>();
    h->model = model;
    h->session = std::move(session.value());
    model->holder = "a training session";
    model->trained = true;
    *out = h.release();
    return PLLM_OK;
  });
}

pllm_status pllm_session_train(pllm_session* session, int32_t max_steps, const pllm_control* control, int32_t* out_steps_done,
                               double* out_eval_loss) {
  const pllm_status status = guarded(control, [&] {
    if (!session) return fail(PLLM_ERR_INVALID_ARGUMENT, "session is required");
    ModelCall call(session->model);
    if (pllm_status s = call.status(); s != PLLM_OK) return s;
    if (max_steps < 0) return fail(PLLM_ERR_INVALID_ARGUMENT, "max_steps must be >= 0 (0: to the end of the run)");
    auto r = session->session->run([&](const pocketllm::StepProgress& s) {
      return report_progress(control, static_cast<float>(s.step + 1) / static_cast<float>(s.total));
    }, nullptr, max_steps);
    if (!r) return fail(r.status());
    for (const auto& e : r->evals)
      if (!e.validation) session->last_eval_loss = e.result.loss;  // the held-out set's, not the validation split's
    if (out_eval_loss) *out_eval_loss = session->last_eval_loss;
    if (r->stopped) return fail(PLLM_ERR_CANCELLED, "stopped after step " + std::to_string(r->steps_done) + "; train again to go on");
    return PLLM_OK;
  });
  // Also after a cancellation inside a step (which unwinds before the step is logged).
  if (session && out_steps_done) *out_steps_done = session->session->steps_done();
  return status;
}

int32_t pllm_session_steps_done(const pllm_session* s) { return s ? s->session->steps_done() : 0; }
int32_t pllm_session_total_steps(const pllm_session* s) { return s ? s->session->total_steps() : 0; }

void pllm_session_free(pllm_session* session) {
  if (!session) return;
  pllm_model* model = session->model;
  delete session;
  release_model_hold(model);
}

}  // extern "C"
