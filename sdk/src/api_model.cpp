// Models: the memory estimate, loading, identity, generation and evaluation with current weights.
#include <algorithm>
#include <cmath>

#include "abi.h"
#include "pocketllm/client/generate.h"
#include "pocketllm/client/memory_estimate.h"
#include "pocketllm/client/model_summary.h"
#include "pocketllm/client/task.h"
#include "pocketllm/client/use_cases.h"
#include "pocketllm/common/utf8.h"

using namespace pllm_abi;

namespace pllm_abi {

pllm_status check_workload(int32_t batch, int32_t max_length) {
  if (batch < 1 || batch > 4096 || max_length < 2 || max_length > 65536)
    return fail(PLLM_ERR_INVALID_ARGUMENT, "batch_size must be 1..4096 and max_length 2..65536");
  return PLLM_OK;
}

// Generation with the model's current weights; shared by pllm_generate and pllm_device_generate.
pllm_status generate_with(pocketllm::ThreadPool* pool, pocketllm::LoadedModel& loaded, const char* prompt,
                          const pllm_generate_params* params, pllm_token_callback on_token, void* user, char** out_text) {
  if (out_text) *out_text = nullptr;
  if (pllm_status s = check_text(prompt, "prompt"); s != PLLM_OK) return s;
  pllm_generate_params p;
  if (pllm_status s = read_params(params, pllm_generate_default_params(), &p, "pllm_generate_params"); s != PLLM_OK) return s;
  if (p.max_new_tokens < 1 || p.max_new_tokens > 65536 || !(p.temperature > 0) || !std::isfinite(p.temperature) || p.top_k < 0 ||
      !(p.top_p > 0 && p.top_p <= 1) || !(p.repetition_penalty > 0 && p.repetition_penalty <= 100))
    return fail(PLLM_ERR_INVALID_ARGUMENT,
                "max_new_tokens must be 1..65536, temperature > 0, top_k >= 0, top_p in (0, 1] and repetition_penalty in (0, 100]");
  if (!loaded.tokenizer) return fail(PLLM_ERR_NOT_FOUND, "the model was loaded without a tokenizer");
  pocketllm::GenerateOptions o;
  o.max_new_tokens = p.max_new_tokens;
  o.greedy = p.greedy;
  o.temperature = p.temperature;
  o.top_k = p.top_k;
  o.top_p = p.top_p;
  o.seed = p.seed;
  o.repetition_penalty = p.repetition_penalty;
  pocketllm::Tokenizer& tok = *loaded.tokenizer;
  auto ids = tok.encode(prompt, true, false);
  if (!ids) return fail(ids.status());
  // Pieces reach the callback as whole characters (a character may span tokens; bytes that form none
  // become U+FFFD), and the text is what the callback heard.
  std::string text;
  pocketllm::Utf8Stream utf8;
  int32_t prev = ids->back();
  bool stopped = false;
  auto hand_out = [&](const std::string& piece) {
    if (piece.empty()) return true;
    text += piece;
    if (on_token && !on_token(piece.c_str(), user)) stopped = true;
    return !stopped;
  };
  auto r = pocketllm::generate(pool, *loaded.model, ids.value(), o, [&](int32_t id) {
    if (id == tok.eos_id()) return true;
    const std::string piece = tok.decode_piece(prev, id);
    prev = id;
    return hand_out(utf8.push(piece));
  });
  if (!r) return fail(r.status());
  if (!stopped) hand_out(utf8.finish());
  if (stopped) return fail(PLLM_ERR_CANCELLED, "stopped by the token callback");
  if (out_text) *out_text = dup_string(text);
  return PLLM_OK;
}

pllm_status classify_with(pocketllm::ThreadPool* pool, const pocketllm::LoadedModel& loaded, const char* text,
                          const pocketllm::TaskOptions& options, int32_t* out_label, float* probabilities, size_t capacity,
                          size_t* out_n_labels) {
  if (pllm_status s = check_text(text, "text"); s != PLLM_OK) return s;
  if (!out_label) return fail(PLLM_ERR_INVALID_ARGUMENT, "out_label is required");
  auto r = pocketllm::classify_texts(pool, loaded, {text}, options, 1);
  if (!r) return fail(r.status());
  const pocketllm::Prediction& pred = r->front();
  *out_label = pred.predicted;
  if (probabilities)
    for (size_t i = 0; i < std::min(capacity, pred.probabilities.size()); ++i) probabilities[i] = static_cast<float>(pred.probabilities[i]);
  if (out_n_labels) *out_n_labels = pred.probabilities.size();
  return PLLM_OK;
}

// Task options from evaluate params (NULL fields: defaults).
pllm_status task_options(const pllm_evaluate_params& p, pocketllm::TaskOptions* to) {
  for (auto [s, what] : {std::pair{p.task, "task"}, {p.labels, "labels"}, {p.prompt_template, "prompt_template"}, {p.preset, "preset"}})
    if (pllm_status st = check_optional_text(s, what); st != PLLM_OK) return st;
  std::string labels = p.labels ? p.labels : "";
  if (p.preset) {
    std::string tmpl, preset_labels;
    if (!pocketllm::classification_preset(p.preset, &tmpl, &preset_labels))
      return fail(PLLM_ERR_INVALID_ARGUMENT, std::string("preset must be \"sst2\" or \"agnews\", not \"") + p.preset + "\"");
    to->kind = "classify";
    to->prompt_template = tmpl;
    if (!p.labels) labels = preset_labels;
  }
  if (p.task) to->kind = p.task;
  if (to->kind != "lm" && to->kind != "classify") return fail(PLLM_ERR_INVALID_ARGUMENT, "task must be \"lm\" or \"classify\"");
  if (p.prompt_template) to->prompt_template = p.prompt_template;
  if (!labels.empty()) {
    auto lw = pocketllm::parse_label_words(labels);
    if (!lw) return fail(lw.status());
    to->label_words = lw.value();
  }
  if (p.max_length < 2 || p.max_length > 65536) return fail(PLLM_ERR_INVALID_ARGUMENT, "max_length must be 2..65536");
  to->max_length = p.max_length;
  return PLLM_OK;
}

}  // namespace pllm_abi

extern "C" {

pllm_model_params pllm_model_default_params(void) {
  pllm_model_params p{};
  p.struct_size = sizeof p;
  p.batch_size = 1;
  p.max_length = 256;
  return p;
}

pllm_status pllm_estimate_memory(const char* path, const pllm_model_params* params, pllm_memory_estimate* out) {
  return guarded([&] {
    if (pllm_status s = check_text(path, "path", false); s != PLLM_OK) return s;
    if (!out) return fail(PLLM_ERR_INVALID_ARGUMENT, "out is required");
    pllm_model_params p;
    if (pllm_status s = read_params(params, pllm_model_default_params(), &p, "pllm_model_params"); s != PLLM_OK) return s;
    if (pllm_status s = check_workload(p.batch_size, p.max_length); s != PLLM_OK) return s;
    auto e = pocketllm::estimate_model_memory(path, p.batch_size, p.max_length);
    if (!e) return fail(e.status());
    *out = pllm_memory_estimate{sizeof(pllm_memory_estimate), e->weights, e->activations, e->total()};
    return PLLM_OK;
  });
}

pllm_status pllm_model_load(const char* path, const pllm_model_params* params, const pllm_control* control, pllm_model** out) {
  if (out) *out = nullptr;
  return guarded(control, [&] {
    if (pllm_status s = check_text(path, "path", false); s != PLLM_OK) return s;
    if (!out) return fail(PLLM_ERR_INVALID_ARGUMENT, "out is required");
    pllm_model_params p;
    if (pllm_status s = read_params(params, pllm_model_default_params(), &p, "pllm_model_params"); s != PLLM_OK) return s;
    if (pllm_status s = check_threads(p.n_threads); s != PLLM_OK) return s;
    if (pllm_status s = check_optional_text(p.tokenizer_path, "tokenizer_path"); s != PLLM_OK) return s;
    if (pllm_status s = check_workload(p.batch_size, p.max_length); s != PLLM_OK) return s;
    if (p.memory_budget_bytes > 0) {  // before anything is mapped
      auto e = pocketllm::estimate_model_memory(path, p.batch_size, p.max_length);
      if (!e) return fail(e.status());
      if (e->total() > p.memory_budget_bytes)
        return fail(PLLM_ERR_MEMORY_BUDGET, std::string(path) + " needs " + e->describe() + ", over the memory budget of " +
                                                std::to_string(p.memory_budget_bytes) + " bytes");
    }
    pocketllm::LoadOptions lo;
    if (p.tokenizer_path) lo.tokenizer_path = p.tokenizer_path;
    report_progress(control, 0.0f);
    auto loaded = pocketllm::load_model(path, lo);
    if (!loaded) return fail(loaded.status());
    if (!report_progress(control, 0.5f)) return fail(PLLM_ERR_CANCELLED, "stopped by the progress callback");
    auto m = std::make_unique<pllm_model>();
    m->model_id = loaded->model->weights().compute_model_id();
    m->loaded = std::move(loaded.value());
    m->n_threads = p.n_threads;
    m->pool = std::make_unique<pocketllm::ThreadPool>(p.n_threads);
    report_progress(control, 1.0f);
    *out = m.release();
    return PLLM_OK;
  });
}

void pllm_model_free(pllm_model* model) {
  if (!model) return;
  if (model->holder) {  // freed in the wrong order: the session or device still uses it, so it goes with that
    model->free_pending = true;
    log(PLLM_LOG_WARN, std::string("pllm_model_free: the model is in use by ") + model->holder + "; it is freed when that is freed");
    return;
  }
  if (model->call_state.fetch_or(pllm_model::kFreeRequested) & pllm_model::kInCall) {
    log(PLLM_LOG_WARN, "pllm_model_free: a call is using the model; it is freed when that call returns");
    return;
  }
  delete model;
}

uint64_t pllm_model_n_params(const pllm_model* model) {
  return model && model->loaded.model ? model->loaded.model->weights().total_numel() : 0;
}

pllm_status pllm_model_id(const pllm_model* model, char** out_hex) {
  return guarded([&] {
    if (!model || !out_hex) return fail(PLLM_ERR_INVALID_ARGUMENT, "model and out_hex are required");
    *out_hex = dup_string(model->model_id);
    return PLLM_OK;
  });
}

bool pllm_model_is_trained(const pllm_model* model) { return model && model->trained; }

pllm_status pllm_model_info(const pllm_model* model, char** out_json) {
  if (out_json) *out_json = nullptr;
  return guarded([&] {
    if (!model || !model->loaded.model || !out_json) return fail(PLLM_ERR_INVALID_ARGUMENT, "model and out_json are required");
    nlohmann::json j = pocketllm::model_summary(model->loaded);
    j["id"] = model->model_id;
    j["trained"] = model->trained;
    *out_json = dup_string(j.dump());
    return PLLM_OK;
  });
}

int32_t pllm_model_context_length(const pllm_model* model) {
  return model && model->loaded.model ? model->loaded.model->config().max_position_embeddings : 0;
}

pllm_status pllm_count_tokens(const pllm_model* model, const char* text, int32_t* out_count) {
  if (out_count) *out_count = 0;
  return guarded([&] {
    if (!model || !model->loaded.model || !out_count) return fail(PLLM_ERR_INVALID_ARGUMENT, "model and out_count are required");
    ModelCall call(model);  // the tokenizer's match buffers are the model's too
    if (pllm_status s = call.status(); s != PLLM_OK) return s;
    if (pllm_status s = check_text(text, "text"); s != PLLM_OK) return s;
    if (!model->loaded.tokenizer) return fail(PLLM_ERR_NOT_FOUND, "the model was loaded without a tokenizer");
    auto ids = model->loaded.tokenizer->encode(text, true, false);
    if (!ids) return fail(ids.status());
    if (ids->size() > static_cast<size_t>(INT32_MAX)) return fail(PLLM_ERR_OUT_OF_RANGE, "the text has more than 2^31 tokens");
    *out_count = static_cast<int32_t>(ids->size());
    return PLLM_OK;
  });
}

pllm_generate_params pllm_generate_default_params(void) {
  return pllm_generate_params{sizeof(pllm_generate_params), 64, true, 1.0f, 0, 1.0f, 0, 1.0f};
}

pllm_status pllm_generate(pllm_model* model, const char* prompt, const pllm_generate_params* params, pllm_token_callback on_token,
                          void* user, const pllm_control* control, char** out_text) {
  if (out_text) *out_text = nullptr;
  return guarded(control, [&] {
    ModelCall call(model);
    if (pllm_status s = call.status(); s != PLLM_OK) return s;
    if (pllm_status s = check_model_usable(model); s != PLLM_OK) return s;
    return generate_with(model->pool.get(), model->loaded, prompt, params, on_token, user, out_text);
  });
}

pllm_evaluate_params pllm_evaluate_default_params(void) {
  pllm_evaluate_params p{};
  p.struct_size = sizeof p;
  p.max_length = 256;
  p.batch_size = 32;
  return p;
}

pllm_status pllm_model_evaluate(pllm_model* model, const char* data_path, const pllm_evaluate_params* params,
                                const pllm_control* control, double* out_loss, double* out_accuracy) {
  return guarded(control, [&] {
    ModelCall call(model);
    if (pllm_status s = call.status(); s != PLLM_OK) return s;
    if (pllm_status s = check_model_usable(model); s != PLLM_OK) return s;
    if (pllm_status s = check_text(data_path, "data_path", false); s != PLLM_OK) return s;
    pllm_evaluate_params p;
    if (pllm_status s = read_params(params, pllm_evaluate_default_params(), &p, "pllm_evaluate_params"); s != PLLM_OK) return s;
    if (p.batch_size < 1 || p.batch_size > 4096) return fail(PLLM_ERR_INVALID_ARGUMENT, "batch_size must be 1..4096");
    pocketllm::TaskOptions to;
    if (pllm_status s = task_options(p, &to); s != PLLM_OK) return s;
    pocketllm::ProgressScope progress(progress_sink(control));  // batches evaluated / all of them
    auto r = pocketllm::evaluate_model(model->pool.get(), model->loaded, data_path, to, p.batch_size);
    if (!r) return fail(r.status());
    if (out_loss) *out_loss = r->result.loss;
    if (out_accuracy) *out_accuracy = r->result.accuracy;
    return PLLM_OK;
  });
}

pllm_status pllm_classify(pllm_model* model, const char* text, const pllm_evaluate_params* params, const pllm_control* control,
                          int32_t* out_label, float* probabilities, size_t capacity, size_t* out_n_labels) {
  if (out_label) *out_label = -1;
  if (out_n_labels) *out_n_labels = 0;
  return guarded(control, [&] {
    ModelCall call(model);
    if (pllm_status s = call.status(); s != PLLM_OK) return s;
    if (pllm_status s = check_model_usable(model); s != PLLM_OK) return s;
    pllm_evaluate_params p;
    if (pllm_status s = read_params(params, pllm_evaluate_default_params(), &p, "pllm_evaluate_params"); s != PLLM_OK) return s;
    pocketllm::TaskOptions to;
    if (pllm_status s = task_options(p, &to); s != PLLM_OK) return s;
    if (to.label_words.empty()) return fail(PLLM_ERR_INVALID_ARGUMENT, "pllm_classify needs labels (\"0:bad,1:good\") or a preset");
    return classify_with(model->pool.get(), model->loaded, text, to, out_label, probabilities, capacity, out_n_labels);
  });
}

}  // extern "C"
