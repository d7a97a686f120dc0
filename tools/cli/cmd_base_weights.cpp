// pocketllm base-weights: the starting values of a task's trainable set (adapters included), the file a
// server's task names as `base_weights` to serve snapshots.
#include <cstdio>

#include "commands.h"
#include "pocketllm/cli/command.h"
#include "pocketllm/cli/lora_args.h"
#include "pocketllm/client/loader.h"
#include "pocketllm/client/lora.h"
#include "pocketllm/common/safetensors.h"
#include "pocketllm/common/update_log.h"

namespace pocketllm::cli {

int cmd_base_weights(const std::vector<std::string>& argv) {
  static const char* kBaseWeightsHelp =
      "usage: pocketllm base-weights --model PATH --out FILE.safetensors [--trainable P]\n"
      "                              [--lora-rank R [--lora-alpha A] [--lora-targets T] [--lora-init-seed S]]\n"
      "\n"
      "Writes the trainable tensors of a federated task at their starting values (F32 safetensors): the\n"
      "tensors --trainable selects (default \"*\", or none with --lora-rank) and the adapters, initialised\n"
      "as every device initialises them (docs/training.md section 4). A server task given this file as\n"
      "\"base_weights\" serves snapshots. Prints the base model id the task must name.\n";
  Command cmd("pocketllm base-weights", kBaseWeightsHelp,
              {"model", "out", "trainable", "lora-rank", "lora-alpha", "lora-targets", "lora-init-seed"});
  return cmd.run(argv, [&](const Args& args) {
    if (!args.has("model") || !args.has("out")) return cmd.usage("--model and --out are required");
    LoraConfig lora;
    if (std::string m = read_lora_args(args, &lora); !m.empty()) return cmd.usage(m);
    auto loaded = load_model(args.get("model"));
    if (!loaded) return cmd.fail(loaded.status().message());
    const std::string id = loaded->model->weights().compute_model_id();
    auto selected = select_trainable(*loaded->model, args.get("trainable", lora.enabled() ? "none" : "*"), lora);
    if (!selected) return cmd.fail(selected.status().message());
    std::vector<TensorToWrite> out;
    size_t numel = 0;
    for (const Weight* w : loaded->model->weights().trainable()) {
      out.push_back({w->name, DType::kF32, w->shape, w->data});
      numel += w->numel();
    }
    if (Status s = write_safetensors(args.get("out"), out, {{"format", "pocketllm.base_weights"}, {"base_model_id", id}}); !s)
      return cmd.fail(s.message());
    std::printf("wrote %zu tensors (%zu parameters) to %s\nbase_model_id %s\n", out.size(), numel, args.get("out").c_str(), id.c_str());
    return 0;
  });
}

}  // namespace pocketllm::cli
