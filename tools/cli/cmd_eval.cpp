// pocketllm eval, export and convert: argv -> the engine's use-case requests (client/use_cases.h); the
// model and task options eval and classify share.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "commands.h"
#include "pocketllm/cli/command.h"
#include "pocketllm/client/use_cases.h"
#include "pocketllm/common/utf8.h"
#include "pocketllm/common/work_progress.h"

namespace pocketllm::cli {

namespace {
// Progress of a GGUF write on stderr: a 7B model takes minutes (a tty gets one updating line, a log a
// line every tenth).
ProgressSink tensor_progress() {
  const bool tty = ::isatty(STDERR_FILENO);
  return [tty, last_tenth = -1](size_t done, size_t total) mutable {
    if (tty) {
      std::fprintf(stderr, "\rwriting tensors: %zu/%zu%s", done, total, done == total ? "\n" : "");
      return true;
    }
    const int tenth = static_cast<int>(10 * done / std::max<size_t>(total, 1));
    if (tenth == last_tenth) return true;
    last_tenth = tenth;
    std::fprintf(stderr, "writing tensors: %zu/%zu (%d %%)\n", done, total, 10 * tenth);
    return true;
  };
}
// Per label: its examples, the share labelled right (recall) and how often it was predicted, e.g.
//   label 0 "bad": 428 examples, 95.09% right; predicted 810 times (92.9% of them right)
void print_per_label(const EvaluateReport& r) {
  const auto& c = r.result.confusion;
  for (size_t t = 0; t < c.size() && t < r.label_words.size(); ++t) {
    size_t n = 0, predicted = 0;
    for (size_t p = 0; p < c.size(); ++p) n += c[t][p], predicted += c[p][t];
    const std::string word = r.label_words[t].second.substr(r.label_words[t].second.empty() ? 0 : 1);
    std::printf("label %s \"%s\": %zu examples, %.2f%% right; predicted %zu times", r.label_words[t].first.c_str(), word.c_str(), n,
                n ? 100.0 * static_cast<double>(c[t][t]) / static_cast<double>(n) : 0.0, predicted);
    if (predicted) std::printf(" (%.1f%% of them right)", 100.0 * static_cast<double>(c[t][t]) / static_cast<double>(predicted));
    std::printf("\n");
  }
}

}  // namespace

ProgressSink count_progress(const char* verb, const char* what) {
  const auto t0 = std::chrono::steady_clock::now();
  return [t0, verb, what, last = 0.0](size_t done, size_t total) mutable {
    const double at = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if ((at >= 2 && at - last >= 1) || (done == total && last > 0)) {
      last = at;
      std::fprintf(stderr, "%s %zu of %zu %s (%.0f s)\n", verb, done, total, what, at);
    }
    return true;
  };
}

int model_task_request(const Command& cmd, const Args& args, EvaluateRequest* req) {
  if (args.has("model") == args.has("run")) return cmd.usage("give exactly one of --model and --run");
  auto threads = args.get_u64("threads", 0);
  auto bs = args.get_u64("batch-size", 32);
  auto max_len = args.get_u64("max-length", 256);
  if (!threads || threads.value() > 1024) return cmd.usage("--threads must be 0..1024 (0: all cores)");
  if (!bs || bs.value() == 0 || bs.value() > 65536) return cmd.usage("--batch-size must be 1..65536");
  if (!max_len || max_len.value() < 2 || max_len.value() > (1u << 20)) return cmd.usage("--max-length must be 2..2^20");
  req->model_path = args.get("model");
  req->adapter_path = args.get("adapter");
  if (!req->adapter_path.empty() && req->model_path.empty()) return cmd.usage("--adapter goes with --model");
  if (args.has("quantize") && (req->model_path.empty() || !parse_quantize_type(args.get("quantize"), &req->quantize)))
    return cmd.usage("--quantize goes with --model and is q8_0 or q4_0");
  req->run_dir = args.get("run");
  if (args.has("preset")) {
    std::string tmpl, labels;
    if (!classification_preset(args.get("preset"), &tmpl, &labels)) return cmd.usage("--preset must be sst2 or agnews");
    req->task = "classify";
    req->prompt_template = tmpl;
    req->labels = labels;
  }
  if (args.has("task")) req->task = args.get("task");
  if (args.has("template")) req->prompt_template = args.get("template");
  if (args.has("labels")) req->labels = args.get("labels");
  if (args.has("max-length")) req->max_length = static_cast<int>(max_len.value());
  req->batch_size = static_cast<int>(bs.value());
  req->threads = static_cast<int>(threads.value());
  return 0;
}

int cmd_eval(const std::vector<std::string>& argv) {
  static const char* kEvalHelp =
      "usage: pocketllm eval (--model PATH [--adapter DIR] [--quantize q8_0|q4_0] | --run RUN_DIR) --data FILE\n"
      "                      [--task lm|classify] [--preset sst2|agnews]\n"
      "                      [--template T] [--labels L] [--max-length N] [--batch-size B] [--threads N]\n"
      "\n"
      "With --run, evaluates the run's current weights and defaults the task options to the run's.\n"
      "Classification also prints, per label, its examples, the share labelled right and how often it was\n"
      "predicted (a model that answers one label to everything shows here, not in the accuracy).\n"
      "--preset sets --task classify and the preset's template and labels (as finetune's); --template and\n"
      "--labels given beside it win.\n";
  Command cmd("pocketllm eval", kEvalHelp, {"model", "adapter", "quantize", "run", "data", "task", "template", "labels", "preset", "max-length", "batch-size", "threads"});
  return cmd.run(argv, [&](const Args& args) {
    if (!args.has("data")) return cmd.usage("--data is required");
    EvaluateRequest req;
    if (int rc = model_task_request(cmd, args, &req); rc != 0) return rc;
    req.data_path = args.get("data");
    ProgressScope progress(count_progress("evaluated", "examples"));
    auto r = run_evaluate(req);
    if (!r) return cmd.fail(r.status().message());
    const EvalResult& e = r->result;
    if (e.accuracy >= 0) {
      std::printf("examples %zu  loss %.4f  accuracy %.2f%%\n", e.count, e.loss, 100 * e.accuracy);
      print_per_label(r.value());
    } else
      std::printf("examples %zu  loss %.4f  perplexity %.3f\n", e.count, e.loss, e.perplexity());
    if (r->truncated || r->skipped) std::printf("(%d examples truncated, %d skipped for length)\n", r->truncated, r->skipped);
    return 0;
  });
}

int cmd_export(const std::vector<std::string>& argv) {
  static const char* kEvalHelp =
      "usage: pocketllm export --run RUN_DIR --out PATH [--format hf|gguf|peft] [--type f32|f16|bf16|q8_0|q4_0]\n"
      "\n"
      "Writes the run's fine-tuned model (merged weights). --format hf (default): a Hugging Face directory\n"
      "(model.safetensors, config.json, tokenizer files) that pocketllm and Hugging Face tools load.\n"
      "--format gguf: one GGUF file for llama.cpp and pocketllm, 2-D weights as --type (default f32;\n"
      "llama-family models; docs/gguf.md). Adapters (runs with --lora-rank) are merged into their weights.\n"
      "--format peft: the run's LoRA adapters alone as a Hugging Face PEFT directory (adapter_config.json,\n"
      "adapter_model.safetensors), for runs that trained adapters only; load it with --adapter DIR.\n";
  Command cmd("pocketllm export", kEvalHelp, {"run", "out", "threads", "format", "type"});
  return cmd.run(argv, [&](const Args& args) {
    if (!args.has("run") || !args.has("out")) return cmd.usage("--run and --out are required");
    auto threads = args.get_u64("threads", 0);
    if (!threads || threads.value() > 1024) return cmd.usage("--threads must be an integer from 0 to 1024");
    ExportFormat format;
    const std::string f = args.has("format") ? args.get("format") : "hf";
    if (f != "hf" && f != "gguf" && f != "peft") return cmd.usage("--format must be hf, gguf or peft");
    format.gguf = f == "gguf";
    format.peft = f == "peft";
    if (args.has("type") && (!format.gguf || !parse_gguf_type(args.get("type"), &format.gguf_type)))
      return cmd.usage("--type needs --format gguf and is one of f32, f16, bf16, q8_0, q4_0");
    ProgressScope progress(format.gguf ? tensor_progress() : ProgressSink());
    auto step = export_run(args.get("run"), args.get("out"), static_cast<int>(threads.value()), format);
    if (!step) return cmd.fail(step.status().message());
    std::printf("exported step %d of %s to %s\n", step.value(), args.get("run").c_str(), args.get("out").c_str());
    return 0;
  });
}

}  // namespace pocketllm::cli

namespace pocketllm::cli {

int cmd_convert(const std::vector<std::string>& argv) {
  static const char* kEvalHelp =
      "usage: pocketllm convert --model PATH --out FILE.gguf [--type f32|f16|bf16|q8_0|q4_0] [--name NAME]\n"
      "\n"
      "Converts a model (llama2.c .bin, Hugging Face directory or GGUF) to a GGUF file that llama.cpp and\n"
      "pocketllm load. 2-D weights become --type (default f32); a matrix whose rows are not whole 32-element\n"
      "blocks stays F16 under q8_0/q4_0; norms stay F32. Quantizers follow ggml's reference rounding\n"
      "(docs/gguf.md). A GGUF input is re-quantized; tensors already of --type are copied unchanged.\n";
  Command cmd("pocketllm convert", kEvalHelp, {"model", "out", "type", "name"});
  return cmd.run(argv, [&](const Args& args) {
    if (!args.has("model") || !args.has("out")) return cmd.usage("--model and --out are required");
    DType type = DType::kF32;
    if (args.has("type") && !parse_gguf_type(args.get("type"), &type)) return cmd.usage("--type is one of f32, f16, bf16, q8_0, q4_0");
    if (!is_valid_utf8(args.get("name"))) return cmd.usage("--name must be UTF-8 text (GGUF strings are)");
    std::fprintf(stderr, "loading %s\n", args.get("model").c_str());
    ProgressScope progress(tensor_progress());
    if (Status s = convert_to_gguf(args.get("model"), args.get("out"), type, args.has("name") ? args.get("name") : ""); !s)
      return cmd.fail(s.message());
    std::printf("wrote %s (%s)\n", args.get("out").c_str(), dtype_name(type));
    return 0;
  });
}

}  // namespace pocketllm::cli
