// The C ABI over the client library. Every entry point catches everything: no exception crosses.
#include "pocketllm/pocketllm.h"

#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

#include "pocketllm/client/finetune.h"
#include "pocketllm/client/generate.h"
#include "pocketllm/client/loader.h"
#include "pocketllm/client/memory_estimate.h"
#include "pocketllm/client/use_cases.h"
#include "pocketllm/common/file_util.h"
#include "pocketllm/common/perturbation.h"
#include "pocketllm/common/update_log.h"
#include "pocketllm/federation/device_session.h"
#include "pocketllm/federation/https_transport.h"

struct pllm_model {
  pocketllm::LoadedModel loaded;
  std::unique_ptr<pocketllm::ThreadPool> pool;
};

struct pllm_examples {
  std::string jsonl;
  uint64_t count = 0;
};

struct pllm_device {
  std::unique_ptr<pocketllm::DeviceSession> session;
};

namespace {

thread_local std::string g_last_error;

pllm_status to_status(pocketllm::StatusCode c) {
  return static_cast<pllm_status>(static_cast<int>(c));
}

pllm_status fail(const pocketllm::Status& s) {
  g_last_error = s.message();
  return to_status(s.code());
}

pllm_status fail(pllm_status code, const std::string& message) {
  g_last_error = message;
  return code;
}

char* dup_string(const std::string& s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out) std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}

template <class Fn>
pllm_status guarded(Fn&& fn) {
  try {
    g_last_error.clear();
    return fn();
  } catch (const std::bad_alloc&) {
    return fail(PLLM_ERR_MEMORY_BUDGET, "out of memory");
  } catch (const std::exception& e) {
    return fail(PLLM_ERR_INTERNAL, std::string("internal error: ") + e.what());
  } catch (...) {
    return fail(PLLM_ERR_INTERNAL, "internal error");
  }
}

}  // namespace

extern "C" {

const char* pllm_version(void) { return "0.1.0"; }
int32_t pllm_perturbation_spec_version(void) { return pocketllm::kPerturbationSpecVersion; }
const char* pllm_last_error(void) { return g_last_error.c_str(); }
void pllm_free_string(char* s) { std::free(s); }

pllm_status pllm_generate_z(uint64_t seed, const char* tensor_name, uint64_t start, uint64_t count, pllm_distribution dist,
                            float* out) {
  return guarded([&] {
    if (!tensor_name || (!out && count > 0)) return fail(PLLM_ERR_INVALID_ARGUMENT, "tensor_name and out are required");
    if (dist != PLLM_DIST_RADEMACHER && dist != PLLM_DIST_GAUSSIAN) return fail(PLLM_ERR_INVALID_ARGUMENT, "unknown distribution");
    if (start > UINT64_MAX - count) return fail(PLLM_ERR_OUT_OF_RANGE, "start + count overflows");
    pocketllm::generate_z(static_cast<pocketllm::Distribution>(dist), seed, pocketllm::tensor_tag(tensor_name), start,
                          static_cast<size_t>(count), out);
    return PLLM_OK;
  });
}

pllm_model_params pllm_model_default_params(void) { return pllm_model_params{nullptr, 0, 0}; }

pllm_status pllm_model_load(const char* path, const pllm_model_params* params, pllm_model** out) {
  return guarded([&] {
    if (!path || !out) return fail(PLLM_ERR_INVALID_ARGUMENT, "path and out are required");
    *out = nullptr;
    const pllm_model_params p = params ? *params : pllm_model_default_params();
    pocketllm::LoadOptions lo;
    if (p.tokenizer_path) lo.tokenizer_path = p.tokenizer_path;
    auto loaded = pocketllm::load_model(path, lo);
    if (!loaded) return fail(loaded.status());
    const uint64_t estimate = loaded->model->weights().storage_bytes();
    if (p.memory_budget_bytes > 0 && estimate > p.memory_budget_bytes)
      return fail(PLLM_ERR_MEMORY_BUDGET, std::string(path) + ": the weights alone need " + std::to_string(estimate) +
                                              " bytes, over the memory budget of " + std::to_string(p.memory_budget_bytes));
    auto m = std::make_unique<pllm_model>();
    m->loaded = std::move(loaded.value());
    m->pool = std::make_unique<pocketllm::ThreadPool>(p.n_threads);
    *out = m.release();
    return PLLM_OK;
  });
}

void pllm_model_free(pllm_model* model) { delete model; }

uint64_t pllm_model_n_params(const pllm_model* model) { return model ? model->loaded.model->weights().total_numel() : 0; }

pllm_status pllm_model_id(const pllm_model* model, char** out_hex) {
  return guarded([&] {
    if (!model || !out_hex) return fail(PLLM_ERR_INVALID_ARGUMENT, "model and out_hex are required");
    *out_hex = dup_string(model->loaded.model->weights().compute_model_id());
    return PLLM_OK;
  });
}

pllm_generate_params pllm_generate_default_params(void) { return pllm_generate_params{64, true, 1.0f, 0, 1.0f, 0}; }

}  // extern "C"

namespace {
pllm_status generate_with(pocketllm::ThreadPool* pool, pocketllm::LoadedModel& loaded, const char* prompt,
                          const pllm_generate_params* params, pllm_token_callback on_token, void* user, char** out_text) {
  if (!prompt) return fail(PLLM_ERR_INVALID_ARGUMENT, "prompt is required");
  if (!loaded.tokenizer) return fail(PLLM_ERR_NOT_FOUND, "the model was loaded without a tokenizer");
  const pllm_generate_params p = params ? *params : pllm_generate_default_params();
  const pocketllm::GenerateOptions o{p.max_new_tokens, p.greedy, p.temperature, p.top_k, p.top_p, p.seed};
  pocketllm::Tokenizer& tok = *loaded.tokenizer;
  auto ids = tok.encode(prompt, true, false);
  if (!ids) return fail(ids.status());
  std::string text;
  int32_t prev = ids->back();
  bool stopped = false;
  auto r = pocketllm::generate(pool, *loaded.model, ids.value(), o, [&](int32_t id) {
    if (id == tok.eos_id()) return true;
    const std::string piece = tok.decode_piece(prev, id);
    prev = id;
    text += piece;
    if (on_token && !on_token(piece.c_str(), user)) {
      stopped = true;
      return false;
    }
    return true;
  });
  if (!r) return fail(r.status());
  if (out_text) *out_text = dup_string(text);
  return stopped ? fail(PLLM_ERR_CANCELLED, "stopped by the token callback") : PLLM_OK;
}
}  // namespace

extern "C" {

pllm_status pllm_generate(pllm_model* model, const char* prompt, const pllm_generate_params* params,
                          pllm_token_callback on_token, void* user, char** out_text) {
  return guarded([&] {
    if (!model) return fail(PLLM_ERR_INVALID_ARGUMENT, "model is required");
    return generate_with(model->pool.get(), model->loaded, prompt, params, on_token, user, out_text);
  });
}

pllm_finetune_params pllm_finetune_default_params(void) {
  pllm_finetune_params p{};
  p.task = "lm";
  p.prompt_template = "{text} It was";
  p.trainable = "*";
  p.steps = 100;
  p.max_length = 256;
  p.batch_size = 16;
  p.lr = 1e-4f;
  p.eps = 1e-3f;
  return p;
}

pllm_status pllm_finetune(const pllm_finetune_params* params, pllm_progress_callback progress, void* user,
                          double* out_eval_loss) {
  return guarded([&] {
    if (!params || !params->run_dir) return fail(PLLM_ERR_INVALID_ARGUMENT, "params and run_dir are required");
    const pllm_finetune_params& p = *params;
    pocketllm::FinetuneRequest req;
    req.out_dir = p.run_dir;
    req.resume = p.resume;
    req.threads = p.n_threads;
    if (p.eval_data_path) req.eval_data_path = p.eval_data_path;
    if (!p.resume) {
      if (!p.model_path || !p.data_path) return fail(PLLM_ERR_INVALID_ARGUMENT, "model_path and data_path are required");
      if (p.steps <= 0 || p.batch_size <= 0 || !(p.eps > 0) || !std::isfinite(p.lr))
        return fail(PLLM_ERR_INVALID_ARGUMENT, "steps and batch_size must be positive, eps > 0, lr finite");
      pocketllm::RunSpec& s = req.spec;
      s.model_path = p.model_path;
      s.data_path = p.data_path;
      s.trainable = p.trainable ? p.trainable : "*";
      s.train.steps = p.steps;
      s.train.batch_size = p.batch_size;
      s.train.lr = p.lr;
      s.train.eps = p.eps;
      s.train.seed = p.seed;
      s.task.kind = p.task ? p.task : "lm";
      if (p.max_length > 1) s.task.max_length = p.max_length;
      if (p.prompt_template) s.task.prompt_template = p.prompt_template;
      if (p.memory_budget_bytes > 0) {
        auto m = pocketllm::load_model(p.model_path, pocketllm::LoadOptions{});
        if (!m) return fail(m.status());
        const std::string patterns = pocketllm::expand_trainable(s.trainable, m->model->config().num_layers);
        const auto e = pocketllm::estimate_training_memory(*m->model, pocketllm::NamePatterns(patterns), p.batch_size, s.task.max_length);
        if (e.total() > p.memory_budget_bytes)
          return fail(PLLM_ERR_MEMORY_BUDGET, std::string("this run needs ") + e.describe() + ", over the memory budget of " +
                                                  std::to_string(p.memory_budget_bytes) + " bytes");
      }
      if (s.task.kind == "classify") {
        auto lw = pocketllm::parse_label_words(p.labels ? p.labels : "");
        if (!lw) return fail(lw.status());
        s.task.label_words = lw.value();
      }
    }
    auto r = pocketllm::run_finetune(req, [&](const pocketllm::StepProgress& s) {
      return progress ? progress(static_cast<float>(s.step + 1) / static_cast<float>(s.total), user) : true;
    });
    if (!r) return fail(r.status());
    if (out_eval_loss) *out_eval_loss = r->evals.empty() ? std::nan("") : r->evals.back().result.loss;
    return r->stopped ? fail(PLLM_ERR_CANCELLED, "stopped by the progress callback; the run can be resumed") : PLLM_OK;
  });
}

pllm_status pllm_replay_tensor(const char* log_path, const char* tensor_name, pllm_distribution dist, float* data,
                               uint64_t count) {
  return guarded([&] {
    if (!log_path || !tensor_name || (!data && count > 0)) return fail(PLLM_ERR_INVALID_ARGUMENT, "missing argument");
    if (dist != PLLM_DIST_RADEMACHER && dist != PLLM_DIST_GAUSSIAN) return fail(PLLM_ERR_INVALID_ARGUMENT, "unknown distribution");
    auto log = pocketllm::load_replayable_log(log_path);
    if (!log) return fail(log.status());
    const std::vector<pocketllm::NamedTensor> tensors = {{tensor_name, data, static_cast<size_t>(count)}};
    pocketllm::replay_steps(nullptr, static_cast<pocketllm::Distribution>(dist), log->steps, 0, log->steps.size(), tensors);
    return PLLM_OK;
  });
}


pllm_device_params pllm_device_default_params(void) {
  pllm_device_params p{};
  p.timeout_ms = 30000;
  return p;
}

pllm_status pllm_device_open(const pllm_device_params* params, pllm_device** out) {
  return guarded([&] {
    if (!params || !out) return fail(PLLM_ERR_INVALID_ARGUMENT, "params and out are required");
    const pllm_device_params& p = *params;
    for (const char* f : {p.server_url, p.credentials_path, p.task_id, p.model_path, p.data_path, p.state_dir})
      if (!f || !*f) return fail(PLLM_ERR_INVALID_ARGUMENT, "server_url, credentials_path, task_id, model_path, data_path and state_dir are required");
    auto transport = pocketllm::make_https_transport(pocketllm::ServerConnection{
        p.server_url, p.ca_file ? p.ca_file : "", p.pinned_sha256 ? p.pinned_sha256 : "", p.timeout_ms > 0 ? p.timeout_ms : 30000});
    if (!transport) return fail(transport.status());
    pocketllm::DeviceConfig c;
    c.transport = std::move(transport.value());
    c.server_url = p.server_url;
    c.credentials_file = p.credentials_path;
    c.enrolment_token = p.enrolment_token ? p.enrolment_token : "";
    c.task_id = p.task_id;
    c.model_path = p.model_path;
    c.data_path = p.data_path;
    c.state_dir = p.state_dir;
    c.threads = p.n_threads;
    c.memory_budget_bytes = p.memory_budget_bytes;
    auto session = pocketllm::DeviceSession::open(std::move(c));
    if (!session) return fail(session.status());
    auto d = std::make_unique<pllm_device>();
    d->session = std::move(session.value());
    *out = d.release();
    return PLLM_OK;
  });
}

void pllm_device_free(pllm_device* device) { delete device; }

pllm_status pllm_device_sync(pllm_device* d, uint64_t* out_version) {
  return guarded([&] {
    if (!d) return fail(PLLM_ERR_INVALID_ARGUMENT, "device is required");
    if (pocketllm::Status s = d->session->device().sync(); !s) return fail(s);
    if (out_version) *out_version = d->session->device().version();
    return PLLM_OK;
  });
}

pllm_status pllm_device_run_round(pllm_device* d, bool* out_submitted, uint64_t* out_round) {
  return guarded([&] {
    if (!d || !out_submitted) return fail(PLLM_ERR_INVALID_ARGUMENT, "device and out_submitted are required");
    *out_submitted = false;
    auto round = d->session->current_round();
    if (!round) return fail(round.status());
    if (out_round) *out_round = round->round;
    if (!d->session->is_new(round.value())) return PLLM_OK;
    auto p = d->session->take_part(round.value());
    if (!p) return fail(p.status());
    *out_submitted = p->submitted();
    if (p->outcome == pocketllm::Outcome::kRejected)
      return fail(PLLM_ERR_MISMATCH, "the server refused the submission: " + p->describe());
    return PLLM_OK;
  });
}

pllm_status pllm_device_personalize(pllm_device* d, int32_t steps, float lr, uint64_t seed) {
  return guarded([&] {
    if (!d || steps < 0) return fail(PLLM_ERR_INVALID_ARGUMENT, "device is required and steps must be >= 0");
    if (!(lr > 0) || !std::isfinite(lr)) return fail(PLLM_ERR_INVALID_ARGUMENT, "lr must be a positive number");
    const pocketllm::TaskInfo& info = d->session->device().task_info();
    pocketllm::TrainOptions o;
    o.lr = lr;
    o.seed = seed;
    o.batch_size = info.batch_size > 0 ? static_cast<int>(info.batch_size) : 16;
    o.eps = static_cast<float>(info.eps);
    o.dist = info.dist;
    if (pocketllm::Status s = d->session->device().personalize(o, steps); !s) return fail(s);
    return PLLM_OK;
  });
}

pllm_status pllm_device_eval(pllm_device* d, const char* data_path, double* out_loss, double* out_accuracy) {
  return guarded([&] {
    if (!d || !data_path) return fail(PLLM_ERR_INVALID_ARGUMENT, "device and data_path are required");
    auto e = d->session->evaluate(data_path);
    if (!e) return fail(e.status());
    if (out_loss) *out_loss = e->loss;
    if (out_accuracy) *out_accuracy = e->accuracy;
    return PLLM_OK;
  });
}

pllm_status pllm_device_generate(pllm_device* d, const char* prompt, const pllm_generate_params* params, pllm_token_callback on_token,
                                 void* user, char** out_text) {
  return guarded([&] {
    if (!d) return fail(PLLM_ERR_INVALID_ARGUMENT, "device is required");
    return generate_with(d->session->pool(), d->session->model().loaded, prompt, params, on_token, user, out_text);
  });
}

uint64_t pllm_device_bytes_sent(const pllm_device* d) { return d ? d->session->client().bytes_sent() : 0; }
uint64_t pllm_device_bytes_received(const pllm_device* d) { return d ? d->session->client().bytes_received() : 0; }


pllm_examples* pllm_examples_new(void) {
  try {
    return new pllm_examples();
  } catch (...) {
    return nullptr;
  }
}
void pllm_examples_free(pllm_examples* e) { delete e; }
uint64_t pllm_examples_count(const pllm_examples* e) { return e ? e->count : 0; }

namespace {
pllm_status add_example(pllm_examples* e, const nlohmann::json& j, std::initializer_list<const char*> fields) {
  if (!e) return fail(PLLM_ERR_INVALID_ARGUMENT, "examples is required");
  for (const char* f : fields) {
    if (!f) return fail(PLLM_ERR_INVALID_ARGUMENT, "every field of an example is required");
    if (!pocketllm::is_valid_utf8(f)) return fail(PLLM_ERR_INVALID_ARGUMENT, "an example is not valid UTF-8");
  }
  e->jsonl += j.dump() + "\n";
  ++e->count;
  return PLLM_OK;
}
}  // namespace

pllm_status pllm_examples_add_text(pllm_examples* e, const char* text) {
  return guarded([&] {
    if (!text || !*text) return fail(PLLM_ERR_INVALID_ARGUMENT, "text is required and must not be empty");
    if (!pocketllm::is_valid_utf8(text)) return fail(PLLM_ERR_INVALID_ARGUMENT, "text is not valid UTF-8");
    return add_example(e, {{"text", text}}, {text});
  });
}

pllm_status pllm_examples_add_completion(pllm_examples* e, const char* prompt, const char* completion) {
  return guarded([&] {
    if (!prompt || !completion || !*completion) return fail(PLLM_ERR_INVALID_ARGUMENT, "prompt and a non-empty completion are required");
    if (!pocketllm::is_valid_utf8(prompt) || !pocketllm::is_valid_utf8(completion)) return fail(PLLM_ERR_INVALID_ARGUMENT, "not valid UTF-8");
    return add_example(e, {{"prompt", prompt}, {"completion", completion}}, {prompt, completion});
  });
}

pllm_status pllm_examples_add_labelled(pllm_examples* e, const char* text, const char* label) {
  return guarded([&] {
    if (!text || !*text || !label || !*label) return fail(PLLM_ERR_INVALID_ARGUMENT, "text and label are required");
    if (!pocketllm::is_valid_utf8(text) || !pocketllm::is_valid_utf8(label)) return fail(PLLM_ERR_INVALID_ARGUMENT, "not valid UTF-8");
    return add_example(e, {{"text", text}, {"label", label}}, {text, label});
  });
}

pllm_status pllm_examples_write(const pllm_examples* e, const char* path) {
  return guarded([&] {
    if (!e || !path) return fail(PLLM_ERR_INVALID_ARGUMENT, "examples and path are required");
    if (e->count == 0) return fail(PLLM_ERR_INVALID_ARGUMENT, "no examples to write");
    if (pocketllm::Status s = pocketllm::write_file_atomic(path, e->jsonl); !s) return fail(s);
    ::chmod(path, 0600);
    return PLLM_OK;
  });
}

pllm_status pllm_evaluate(const char* model_path, const char* run_dir, const char* data_path, const char* task, const char* labels,
                          const char* prompt_template, double* out_loss, double* out_accuracy) {
  return guarded([&] {
    if (!data_path || (!model_path && !run_dir)) return fail(PLLM_ERR_INVALID_ARGUMENT, "data_path and a model_path or run_dir are required");
    pocketllm::EvaluateRequest req;
    if (run_dir) req.run_dir = run_dir;
    else req.model_path = model_path;
    req.data_path = data_path;
    if (task) req.task = task;
    if (labels) req.labels = labels;
    if (prompt_template) req.prompt_template = prompt_template;
    auto r = pocketllm::run_evaluate(req);
    if (!r) return fail(r.status());
    if (out_loss) *out_loss = r->result.loss;
    if (out_accuracy) *out_accuracy = r->result.accuracy;
    return PLLM_OK;
  });
}

pllm_status pllm_export(const char* run_dir, const char* out_dir) {
  return guarded([&] {
    if (!run_dir || !out_dir) return fail(PLLM_ERR_INVALID_ARGUMENT, "run_dir and out_dir are required");
    auto step = pocketllm::export_run(run_dir, out_dir);
    if (!step) return fail(step.status());
    return PLLM_OK;
  });
}

}  // extern "C"
