// pocketllm eval and export: argv -> the engine's use-case requests (client/use_cases.h).
#include <cstdio>

#include "commands.h"
#include "pocketllm/cli/command.h"
#include "pocketllm/client/use_cases.h"

namespace pocketllm::cli {

int cmd_eval(const std::vector<std::string>& argv) {
  static const char* kHelp =
      "usage: pocketllm eval (--model PATH | --run RUN_DIR) --data FILE [--task lm|classify]\n"
      "                      [--template T] [--labels L] [--max-length N] [--batch-size B] [--threads N]\n"
      "\n"
      "With --run, evaluates the run's current weights and defaults the task options to the run's.\n";
  Command cmd("pocketllm eval", kHelp, {"model", "run", "data", "task", "template", "labels", "max-length", "batch-size", "threads"});
  return cmd.run(argv, [&](const Args& args) {
    if (args.has("model") == args.has("run")) return cmd.usage("give exactly one of --model and --run");
    if (!args.has("data")) return cmd.usage("--data is required");
    auto threads = args.get_u64("threads", 0);
    auto bs = args.get_u64("batch-size", 32);
    auto max_len = args.get_u64("max-length", 256);
    if (!threads || threads.value() > 1024 || !bs || bs.value() == 0 || bs.value() > 65536 || !max_len || max_len.value() < 2 ||
        max_len.value() > (1u << 20))
      return cmd.usage("--threads, --batch-size or --max-length out of range");
    EvaluateRequest req;
    req.model_path = args.get("model");
    req.run_dir = args.get("run");
    req.data_path = args.get("data");
    if (args.has("task")) req.task = args.get("task");
    if (args.has("template")) req.prompt_template = args.get("template");
    if (args.has("labels")) req.labels = args.get("labels");
    if (args.has("max-length")) req.max_length = static_cast<int>(max_len.value());
    req.batch_size = static_cast<int>(bs.value());
    req.threads = static_cast<int>(threads.value());
    auto r = run_evaluate(req);
    if (!r) return cmd.fail(r.status().message());
    const EvalResult& e = r->result;
    if (e.accuracy >= 0)
      std::printf("examples %zu  loss %.4f  accuracy %.2f%%\n", e.count, e.loss, 100 * e.accuracy);
    else
      std::printf("examples %zu  loss %.4f  perplexity %.3f\n", e.count, e.loss, e.perplexity());
    if (r->truncated || r->skipped) std::printf("(%d examples truncated, %d skipped for length)\n", r->truncated, r->skipped);
    return 0;
  });
}

int cmd_export(const std::vector<std::string>& argv) {
  static const char* kHelp =
      "usage: pocketllm export --run RUN_DIR --out DIR\n"
      "\n"
      "Writes the run's fine-tuned model as a Hugging Face directory (model.safetensors, config.json,\n"
      "tokenizer files) that pocketllm and Hugging Face tools load.\n";
  Command cmd("pocketllm export", kHelp, {"run", "out", "threads"});
  return cmd.run(argv, [&](const Args& args) {
    if (!args.has("run") || !args.has("out")) return cmd.usage("--run and --out are required");
    auto threads = args.get_u64("threads", 0);
    if (!threads || threads.value() > 1024) return cmd.usage("--threads must be an integer from 0 to 1024");
    auto step = export_run(args.get("run"), args.get("out"), static_cast<int>(threads.value()));
    if (!step) return cmd.fail(step.status().message());
    std::printf("exported step %d of %s to %s\n", step.value(), args.get("run").c_str(), args.get("out").c_str());
    return 0;
  });
}

}  // namespace pocketllm::cli
