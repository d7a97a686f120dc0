#include <cctype>
#include "pocketllm/client/use_cases.h"

#include <sys/stat.h>

#include "pocketllm/client/dataset.h"
#include "pocketllm/client/loader.h"
#include "pocketllm/common/file_util.h"

namespace pocketllm {

namespace {

// The request's model (a model file — with an adapter, quantized — or a run's current weights) and its
// task options: the run's, else the defaults, with the request's overrides.
Result<LoadedModel> load_request_model(const EvaluateRequest& r, ThreadPool* pool, TaskOptions* to) {
  if (r.model_path.empty() == r.run_dir.empty()) return invalid_argument("give exactly one of a model and a run directory");
  if (r.batch_size < 1 || r.batch_size > 65536 || (r.max_length && *r.max_length < 2))
    return invalid_argument("batch size must be 1..65536 and max length at least 2");
  LoadedModel loaded;
  if (!r.run_dir.empty()) {
    RunDir run;
    auto l = load_run_model(r.run_dir, &run, pool);
    if (!l) return l.status();
    loaded = std::move(l.value());
    *to = run.spec().task;
  } else {
    LoadOptions lo;
    lo.require_tokenizer = true;
    lo.adapter_path = r.adapter_path;
    lo.quantize = r.quantize;
    auto l = load_model(r.model_path, lo);
    if (!l) return l.status();
    loaded = std::move(l.value());
  }
  if (r.task) to->kind = *r.task;
  if (r.prompt_template) to->prompt_template = *r.prompt_template;
  if (r.labels) {
    auto lw = parse_label_words(*r.labels);
    if (!lw) return lw.status();
    to->label_words = lw.value();
  }
  if (r.max_length) to->max_length = *r.max_length;
  return loaded;
}

}  // namespace

Result<EvaluateReport> run_evaluate(const EvaluateRequest& r) {
  if (r.data_path.empty()) return invalid_argument("a data file is required");
  ThreadPool pool(r.threads);
  TaskOptions to;
  auto loaded = load_request_model(r, &pool, &to);
  if (!loaded) return loaded.status();
  return evaluate_model(&pool, loaded.value(), r.data_path, to, r.batch_size);
}

Result<ClassifyReport> run_classify(const EvaluateRequest& r, const std::vector<std::string>& texts) {
  ThreadPool pool(r.threads);
  TaskOptions to;
  auto loaded = load_request_model(r, &pool, &to);
  if (!loaded) return loaded.status();
  if (to.kind != "classify" && !r.labels)
    return invalid_argument("classify needs label words: --labels, a --preset, or a run that trained a classifier");
  auto p = classify_texts(&pool, loaded.value(), texts, to, r.batch_size);
  if (!p) return p.status();
  return ClassifyReport{to.label_words, std::move(p.value())};
}

Result<EvaluateReport> evaluate_model(ThreadPool* pool, const LoadedModel& loaded, const std::string& data_path, const TaskOptions& to,
                                      int batch_size) {
  if (!loaded.tokenizer) return invalid_argument("evaluation needs the model's tokenizer, and none was loaded");
  DatasetOptions dopt;
  dopt.need_label = to.kind == "classify";
  auto data = load_dataset(data_path, dopt);
  if (!data) return data.status();
  auto task = make_task(data.value(), *loaded.tokenizer, *loaded.model, to);
  if (!task) return task.status();
  auto e = task.value()->evaluate(pool, *loaded.model, batch_size);
  if (!e) return e.status();
  return EvaluateReport{e.value(), task.value()->truncated, task.value()->skipped, to.kind == "classify" ? to.label_words : decltype(to.label_words){}};
}

Result<std::vector<Prediction>> classify_texts(ThreadPool* pool, const LoadedModel& loaded, const std::vector<std::string>& texts,
                                               const TaskOptions& options, int batch_size) {
  if (!loaded.tokenizer) return invalid_argument("classification needs the model's tokenizer, and none was loaded");
  if (texts.empty()) return std::vector<Prediction>{};
  TaskOptions to = options;
  to.kind = "classify";
  if (to.label_words.size() < 2) return invalid_argument("classify: give the label words (at least two), or a preset");
  Dataset data;
  data.path = "text";
  for (size_t i = 0; i < texts.size(); ++i) {
    TextExample e;
    e.text = texts[i];
    e.label = to.label_words[0].first;  // a placeholder: the task needs one; predictions do not read it
    e.line = static_cast<int>(i + 1);
    data.examples.push_back(std::move(e));
  }
  auto task = make_task(data, *loaded.tokenizer, *loaded.model, to);
  if (!task) return task.status();
  std::vector<Prediction> out;
  POCKETLLM_RETURN_IF_ERROR(task.value()->predict(pool, *loaded.model, batch_size, &out));
  std::vector<Prediction> ordered(texts.size());
  std::vector<bool> seen(texts.size(), false);
  for (auto& p : out) {
    p.label = -1;
    seen[p.source] = true;
    ordered[p.source] = std::move(p);
  }
  for (size_t i = 0; i < texts.size(); ++i)
    if (!seen[i])
      return out_of_range("text " + std::to_string(i + 1) + " is too long to classify: its answer position falls beyond max_length (" +
                          std::to_string(to.max_length) + " tokens)");
  return ordered;
}

bool parse_gguf_type(const std::string& name, DType* out) {
  std::string n;
  for (char c : name) n += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0}) {
    if (n == dtype_name(t)) {
      *out = t;
      return true;
    }
  }
  return false;
}

bool parse_quantize_type(const std::string& name, DType* out) {
  DType t;
  if (!parse_gguf_type(name, &t) || (t != DType::kQ8_0 && t != DType::kQ4_0)) return false;
  *out = t;
  return true;
}

Result<int> export_run(const std::string& run_dir, const std::string& out, int threads, const ExportFormat& format) {
  ThreadPool pool(threads);
  RunDir run;
  auto l = load_run_model(run_dir, &run, &pool);
  if (!l) return l.status();
  if (format.peft) {
    if (!run.spec().lora.enabled()) return invalid_argument(run_dir + ": this run trained no adapters; export it with --format hf or gguf");
    POCKETLLM_RETURN_IF_ERROR(export_peft_adapter(*l->model, run.spec().lora, run.spec().model_path, out));
  } else if (format.gguf) {
    GgufExportOptions o;
    o.type = format.gguf_type;
    POCKETLLM_RETURN_IF_ERROR(export_gguf(l.value(), out, o));
  } else {
    POCKETLLM_RETURN_IF_ERROR(export_hf_directory(l.value(), out));
  }
  return run.next_step();
}

Status convert_to_gguf(const std::string& model_path, const std::string& out_file, DType type, const std::string& name) {
  LoadOptions lo;
  lo.require_tokenizer = true;
  auto l = load_model(model_path, lo);
  if (!l) return l.status();
  GgufExportOptions o;
  o.type = type;
  o.name = name;
  return export_gguf(l.value(), out_file, o);
}

Result<ReplayableLog> load_replayable_log(const std::string& path) {
  ReplayableLog out;
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    auto run = RunDir::open(path);
    if (!run) return run.status();
    out.spec = run->spec();
    out.steps = run->steps();
    out.entries = run->update_log().size();
    out.from_run = true;
    return out;
  }
  auto bytes = read_file(path, size_t{1} << 32);
  if (!bytes) return bytes.status();
  const std::string& b = bytes.value();
  auto log = (b.size() >= 8 && b.compare(0, 7, "PLLMLOG") == 0) ? UpdateLog::from_binary(b) : UpdateLog::from_json(b);
  if (!log) return Status(log.status().code(), path + ": " + log.status().message());
  out.steps.resize(1);
  out.steps[0].entries = log->entries();
  out.entries = log->size();
  return out;
}

}  // namespace pocketllm
