// pocketllm eval: loss / perplexity / accuracy of a model or of a fine-tuning run on a dataset.
#include <cstdio>

#include "args.h"
#include "commands.h"
#include "pocketllm/client/finetune.h"

namespace pocketllm::cli {

int cmd_eval(const std::vector<std::string>& argv) {
  static const char* kHelp =
      "usage: pocketllm eval (--model PATH | --run RUN_DIR) --data FILE [--task lm|classify]\n"
      "                      [--template T] [--labels L] [--max-length N] [--batch-size B] [--threads N]\n"
      "\n"
      "With --run, evaluates the run's current weights and defaults the task options to the run's.\n";
  Args args({"model", "run", "data", "task", "template", "labels", "max-length", "batch-size", "threads"}, {"help"});
  if (Status s = args.parse(argv); !s) {
    std::fprintf(stderr, "pocketllm eval: %s\n\n%s", s.message().c_str(), kHelp);
    return 2;
  }
  if (args.has("help")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  auto fail = [](const std::string& m, int code) {
    std::fprintf(stderr, "pocketllm eval: %s\n", m.c_str());
    return code;
  };
  if (args.has("model") == args.has("run")) return fail("give exactly one of --model and --run", 2);
  if (!args.has("data")) return fail("--data is required", 2);
  auto threads = args.get_u64("threads", 0);
  auto bs = args.get_u64("batch-size", 32);
  auto max_len = args.get_u64("max-length", 256);
  if (!threads || threads.value() > 1024 || !bs || bs.value() == 0 || bs.value() > 65536 || !max_len || max_len.value() < 2)
    return fail("--threads, --batch-size or --max-length out of range", 2);
  ThreadPool pool(static_cast<int>(threads.value()));
  TaskOptions to;
  LoadedModel loaded;
  if (args.has("run")) {
    RunDir run;
    auto l = load_run_model(args.get("run"), &run, &pool);
    if (!l) return fail(l.status().message(), 1);
    loaded = std::move(l.value());
    to = run.spec().task;
  } else {
    auto l = load_model(args.get("model"), LoadOptions{"", true});
    if (!l) return fail(l.status().message(), 1);
    loaded = std::move(l.value());
  }
  if (args.has("task")) to.kind = args.get("task");
  if (args.has("template")) to.prompt_template = args.get("template");
  if (args.has("labels")) {
    auto lw = parse_label_words(args.get("labels"));
    if (!lw) return fail(lw.status().message(), 2);
    to.label_words = lw.value();
  }
  if (args.has("max-length")) to.max_length = static_cast<int>(max_len.value());
  DatasetOptions dopt;
  dopt.need_label = to.kind == "classify";
  auto data = load_dataset(args.get("data"), dopt);
  if (!data) return fail(data.status().message(), 1);
  auto task = make_task(data.value(), *loaded.tokenizer, *loaded.model, to);
  if (!task) return fail(task.status().message(), 1);
  auto r = task.value()->evaluate(&pool, *loaded.model, static_cast<int>(bs.value()));
  if (!r) return fail(r.status().message(), 1);
  if (r->accuracy >= 0)
    std::printf("examples %zu  loss %.4f  accuracy %.2f%%\n", r->count, r->loss, 100 * r->accuracy);
  else
    std::printf("examples %zu  loss %.4f  perplexity %.3f\n", r->count, r->loss, r->perplexity());
  if (task.value()->truncated || task.value()->skipped)
    std::printf("(%d examples truncated, %d skipped for length)\n", task.value()->truncated, task.value()->skipped);
  return 0;
}

int cmd_export(const std::vector<std::string>& argv) {
  static const char* kHelp =
      "usage: pocketllm export --run RUN_DIR --out DIR\n"
      "\n"
      "Writes the run's fine-tuned model as a Hugging Face directory (model.safetensors, config.json,\n"
      "tokenizer files) that pocketllm and Hugging Face tools load.\n";
  Args args({"run", "out", "threads"}, {"help"});
  if (Status s = args.parse(argv); !s) {
    std::fprintf(stderr, "pocketllm export: %s\n\n%s", s.message().c_str(), kHelp);
    return 2;
  }
  if (args.has("help")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  if (!args.has("run") || !args.has("out")) {
    std::fprintf(stderr, "pocketllm export: --run and --out are required\n");
    return 2;
  }
  ThreadPool pool(0);
  RunDir run;
  auto l = load_run_model(args.get("run"), &run, &pool);
  if (!l) {
    std::fprintf(stderr, "pocketllm export: %s\n", l.status().message().c_str());
    return 1;
  }
  if (Status s = export_hf_directory(l.value(), args.get("out")); !s) {
    std::fprintf(stderr, "pocketllm export: %s\n", s.message().c_str());
    return 1;
  }
  std::printf("exported step %d of %s to %s\n", run.next_step(), args.get("run").c_str(), args.get("out").c_str());
  return 0;
}

}  // namespace pocketllm::cli
