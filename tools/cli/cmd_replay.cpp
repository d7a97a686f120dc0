// pocketllm replay: applies an update log to the tensors of a safetensors file and writes the result.
// The selected tensors are updated in float32 (theta <- theta - coeff * z, entries in log order);
// every other tensor is copied unchanged.
#include <chrono>
#include <cstdio>
#include <vector>

#include "pocketllm/cli/command.h"
#include "pocketllm/client/use_cases.h"
#include "commands.h"
#include "pocketllm/common/file_util.h"
#include "pocketllm/common/model_id.h"
#include "pocketllm/common/name_pattern.h"
#include "pocketllm/common/safetensors.h"
#include "pocketllm/common/update_log.h"
#include "pocketllm/client/loader.h"
#include "pocketllm/client/lora.h"
#include "pocketllm/client/run_dir.h"
#include "pocketllm/client/trainable_rows.h"
#include "pocketllm/client/added_biases.h"

#include <sys/stat.h>

namespace pocketllm::cli {
namespace {

constexpr const char* kReplayHelp =
    "usage: pocketllm replay --base IN.safetensors --log LOG --out OUT.safetensors\n"
    "                        [--tensors PATTERNS] [--dist rademacher|gaussian] [--threads N]\n"
    "       pocketllm replay --model MODEL --log LOG --out DIR [--tensors PATTERNS] [--dist D]\n"
    "\n"
    "Applies every entry of LOG in order to the selected tensors. LOG is a JSON or binary update log\n"
    "(docs/update-log.md) or a run directory (its log.jsonl; its spec gives --tensors and --dist).\n"
    "With --base, the tensors of one safetensors file are updated and written to OUT (selected tensors\n"
    "as F32). With --model (any format pocketllm loads), the model is written to DIR as a Hugging Face\n"
    "directory.\n"
    "\n"
    "  --tensors P   comma-separated name patterns with * and ? (default: all F32/F16/BF16 tensors)\n"
    "  --dist D      distribution the log was made with (default rademacher)\n"
    "  --threads N   worker threads (default: all cores)\n";

}  // namespace

// long: argv -> replay, the two target forms (--base file, --model directory) side by side.
int cmd_replay(const std::vector<std::string>& argv) {
  Command cmd("pocketllm replay", kReplayHelp, {"base", "model", "log", "out", "tensors", "dist", "threads"});
  return cmd.run(argv, [&](const Args& args) {
    if (args.has("base") == args.has("model")) {
      std::fprintf(stderr, "pocketllm replay: give exactly one of --base and --model\n\n%s", kReplayHelp);
      return 2;
    }
    for (const char* required : {"log", "out"}) {
      if (!args.has(required)) {
        std::fprintf(stderr, "pocketllm replay: --%s is required\n\n%s", required, kReplayHelp);
        return 2;
      }
    }
    Distribution dist;
    if (!parse_distribution(args.get("dist", "rademacher"), &dist)) {
      std::fprintf(stderr, "pocketllm replay: --dist must be rademacher or gaussian\n");
      return 2;
    }
    auto threads = args.get_u64("threads", 0);
    if (!threads || threads.value() > 1024) {
      std::fprintf(stderr, "pocketllm replay: --threads must be an integer from 0 to 1024\n");
      return 2;
    }
    auto log = load_replayable_log(args.get("log"));
    if (!log) {
      std::fprintf(stderr, "pocketllm replay: %s\n", log.status().message().c_str());
      return 1;
    }
    const RunSpec& run_spec = log->spec;
    if (log->from_run && !args.has("dist")) dist = run_spec.train.dist;
    const std::string pattern_text = args.get("tensors", log->from_run ? run_spec.trainable : "*");
    const NamePatterns patterns(pattern_text);
    ThreadPool pool(static_cast<int>(threads.value()));

    if (args.has("model")) {
      LoadOptions lo;
      if (log->from_run) lo.quantize = run_spec.quantize;  // the base as the run held it
      auto loaded = load_model(args.get("model"), lo);
      if (!loaded) {
        std::fprintf(stderr, "pocketllm replay: %s\n", loaded.status().message().c_str());
        return 1;
      }
      if (log->from_run && loaded->model->weights().compute_model_id() != run_spec.model_id) {
        std::fprintf(stderr, "pocketllm replay: %s is not the base model of this run\n", args.get("model").c_str());
        return 1;
      }
      // A run's trainable set: its added biases, its adapters (initialised as the run's were) and its patterns.
      if (log->from_run && !args.has("tensors")) {
        if (auto added = add_zero_biases(*loaded->model, run_spec.added_biases); !added) {
          std::fprintf(stderr, "pocketllm replay: %s\n", added.status().message().c_str());
          return 1;
        }
      }
      auto selected = log->from_run && !args.has("tensors") ? select_trainable(*loaded->model, run_spec.trainable, run_spec.lora)
                                                             : loaded->model->weights().make_trainable(patterns);
      if (!selected) {
        std::fprintf(stderr, "pocketllm replay: %s\n", selected.status().message().c_str());
        return 1;
      }
      if (log->from_run && !args.has("tensors")) {  // the run's step scales, as it trained
        Status s = apply_step_scales(*loaded->model, run_spec.step_scales);
        if (s) s = apply_trainable_rows(*loaded->model, run_spec.trainable_rows);  // and its trainable rows
        if (!s) {
          std::fprintf(stderr, "pocketllm replay: %s\n", s.message().c_str());
          return 1;
        }
      }
      auto tensors = loaded->model->weights().trainable_tensors();
      replay_steps(&pool, dist, log->steps, 0, log->steps.size(), tensors);
      if (Status s = export_hf_directory(loaded.value(), args.get("out")); !s) {
        std::fprintf(stderr, "pocketllm replay: %s\n", s.message().c_str());
        return 1;
      }
      std::printf("replayed %zu entries onto %zu tensors; wrote %s\n", log->entries, tensors.size(), args.get("out").c_str());
      return 0;
    }

    auto base = SafetensorsFile::open(args.get("base"));
    if (!base) {
      std::fprintf(stderr, "pocketllm replay: %s\n", base.status().message().c_str());
      return 1;
    }
    // Selected float tensors get an F32 working copy; the rest are written straight from the map.
    std::vector<std::vector<float>> updated;
    std::vector<NamedTensor> targets;
    std::vector<TensorToWrite> out;
    updated.reserve(base->tensors().size());
    for (const auto& t : base->tensors()) {
      if (patterns.matches(t.name) && dtype_is_float_weights(t.dtype)) {
        updated.emplace_back(static_cast<size_t>(t.numel));
        if (Status s = base->read_f32(t, 0, static_cast<size_t>(t.numel), updated.back().data()); !s) {
          std::fprintf(stderr, "pocketllm replay: %s\n", s.message().c_str());
          return 1;
        }
        targets.push_back({t.name, updated.back().data(), updated.back().size()});
        out.push_back({t.name, DType::kF32, t.shape, updated.back().data()});
      } else {
        out.push_back({t.name, t.dtype, t.shape, base->raw(t)});
      }
    }
    if (targets.empty()) {
      std::fprintf(stderr, "pocketllm replay: no float tensor in %s matches --tensors '%s'\n", args.get("base").c_str(),
                   pattern_text.c_str());
      return 1;
    }
    const auto t0 = std::chrono::steady_clock::now();
    replay_steps(&pool, dist, log->steps, 0, log->steps.size(), targets);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    uint64_t elements = 0;
    for (const auto& t : targets) elements += t.numel;

    std::map<std::string, std::string> metadata = base->metadata();
    metadata["pocketllm.replayed_entries"] = std::to_string(log->entries);
    if (Status s = write_safetensors(args.get("out"), out, metadata); !s) {
      std::fprintf(stderr, "pocketllm replay: %s\n", s.message().c_str());
      return 1;
    }
    std::printf("replayed %zu entries onto %zu tensors (%llu elements) in %.3f s; wrote %s\n", log->entries, targets.size(),
                static_cast<unsigned long long>(elements), secs, args.get("out").c_str());
    return 0;
  });
}

}  // namespace pocketllm::cli
