// The engine's use cases as request structs with one implementation each, called by every front end
// (the pocketllm CLI, the SDK's C ABI, the simulator): evaluate a model or a run, export a run, load an
// update log from any of its forms. Fine-tuning's request is in finetune.h (run_finetune).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "pocketllm/client/finetune.h"
#include "pocketllm/client/run_dir.h"
#include "pocketllm/client/task.h"

namespace pocketllm {

struct EvaluateRequest {
  std::string model_path;  // exactly one of model_path and run_dir
  std::string adapter_path;  // with model_path: a PEFT LoRA adapter directory applied to it
  DType quantize = DType::kF32;  // with model_path: LoadOptions::quantize
  std::string run_dir;     // the run's current weights; task options default to the run's
  std::string data_path;
  std::optional<std::string> task, prompt_template, labels;  // overrides
  std::optional<int> max_length;
  int batch_size = 32;
  int threads = 0;         // 0: all cores
};

struct EvaluateReport {
  EvalResult result;
  int truncated = 0, skipped = 0;  // examples cut to the maximum length, or left out for it
  std::vector<std::pair<std::string, std::string>> label_words;  // classification: (label, word), confusion's order
};

Result<EvaluateReport> run_evaluate(const EvaluateRequest& request);
// The same on a model already in memory (the SDK's pllm_model), with its current weights.
Result<EvaluateReport> evaluate_model(ThreadPool* pool, const LoadedModel& model, const std::string& data_path,
                                      const TaskOptions& options, int batch_size);

// Classifies texts with a model's current weights (the SDK's pllm_classify, `pocketllm classify`): one
// prediction per text, in order, its `label` unset. A text the task leaves out (a masked LM's <mask>
// beyond max_length) is an error naming it. `options.kind` is taken as "classify".
Result<std::vector<Prediction>> classify_texts(ThreadPool* pool, const LoadedModel& model, const std::vector<std::string>& texts,
                                               const TaskOptions& options, int batch_size);

// The same on the model and task options of a request (its data_path is not read), with the label
// words the predictions index.
struct ClassifyReport {
  std::vector<std::pair<std::string, std::string>> label_words;  // (label, word with its leading space)
  std::vector<Prediction> predictions;
};
Result<ClassifyReport> run_classify(const EvaluateRequest& request, const std::vector<std::string>& texts);

// How a model is written: a Hugging Face directory, or one GGUF file with 2-D weights as `gguf_type`.
struct ExportFormat {
  bool gguf = false;
  bool peft = false;  // the run's adapters alone, as a PEFT LoRA directory (runs trained with adapters only)
  DType gguf_type = DType::kF32;
};
// "f32", "f16", "bf16", "q8_0", "q4_0" (any case) -> the GGUF weight type; false for anything else.
bool parse_gguf_type(const std::string& name, DType* out);
// "q8_0" or "q4_0" (any case) -> the type LoadOptions::quantize holds a model in; false for anything else.
bool parse_quantize_type(const std::string& name, DType* out);

// Writes a run's fine-tuned model (merged weights, adapters folded in) as a Hugging Face directory or a
// GGUF file, or its adapters as a PEFT directory; returns the run's next step.
Result<int> export_run(const std::string& run_dir, const std::string& out, int threads = 0, const ExportFormat& format = {});

// Converts a model file (llama2.c .bin, Hugging Face directory or GGUF) to GGUF with `type` weights.
Status convert_to_gguf(const std::string& model_path, const std::string& out_file, DType type, const std::string& name = "");

// An update log as steps to replay: a run directory's own (with weight-decay factors and its spec), or a
// plain update log file (binary or JSON, docs/update-log.md) as one step without decay.
struct ReplayableLog {
  std::vector<LoggedStep> steps;
  size_t entries = 0;
  RunSpec spec;
  bool from_run = false;
};
Result<ReplayableLog> load_replayable_log(const std::string& path);

}  // namespace pocketllm
