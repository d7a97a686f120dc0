// pocketllm info: what a model is and what it needs.
#include <cstdio>

#include "pocketllm/cli/command.h"
#include "commands.h"
#include "pocketllm/client/kernels_info.h"
#include "pocketllm/common/cpu_features.h"
#include "pocketllm/client/loader.h"
#include "pocketllm/client/model_summary.h"

namespace pocketllm::cli {

int cmd_info(const std::vector<std::string>& argv) {
  static const char* kInfoHelp =
      "usage: pocketllm info --model PATH [--id] [--json]\n"
      "       pocketllm info --system\n"
      "\n"
      "Prints the architecture, sizes, parameter count, storage dtypes and a memory estimate.\n"
      "  --id       also compute the base model id (SHA-256 over all canonical tensors; reads every byte)\n"
      "  --json     the description as one JSON object (the SDK's pllm_model_info fields)\n"
      "  --system   the CPU's features and the kernel paths this build chose for it\n";
  Command cmd("pocketllm info", kInfoHelp, {"model", "tokenizer"}, {"id", "system", "json"});
  return cmd.run(argv, [&](const Args& args) {
    if (args.has("system")) {
#if defined(__x86_64__)
      const CpuFeatures& f = cpu_features();
      std::printf("cpu:      x86-64%s%s%s%s%s%s\n", f.avx2 ? " avx2" : "", f.fma ? " fma" : "", f.f16c ? " f16c" : "",
                  f.avx512f ? " avx512f" : "", f.avx512bw ? " avx512bw" : "", f.avx512vnni ? " avx512vnni" : "");
#elif defined(__aarch64__)
      const CpuFeatures& f = cpu_features();
      std::printf("cpu:      aarch64 neon%s%s\n", f.arm_dotprod ? " dotprod" : "", f.arm_i8mm ? " i8mm" : "");
#endif
      std::printf("kernels:  %s\n", kernel_paths().c_str());
      if (!args.has("model")) return 0;
    }
    if (!args.has("model")) {
      std::fprintf(stderr, "pocketllm info: --model is required\n");
      return 2;
    }
    LoadOptions lo;
    lo.tokenizer_path = args.get("tokenizer");
    auto loaded = load_model(args.get("model"), lo);
    if (!loaded) {
      std::fprintf(stderr, "pocketllm info: %s\n", loaded.status().message().c_str());
      return 1;
    }
    const ModelConfig& c = loaded->model->config();
    nlohmann::json j = model_summary(loaded.value());
    if (args.has("id")) j["id"] = loaded->model->weights().compute_model_id();
    if (args.has("json")) {
      std::printf("%s\n", j.dump(2).c_str());
      return 0;
    }
    std::printf("model:         %s (%s)\n", loaded->path.c_str(), loaded->format.c_str());
    std::printf("architecture:  %s (%s)\n", j["architecture"].get<std::string>().c_str(), c.hf_architecture.c_str());
    std::printf("layers %d, hidden %d, ffn %d, heads %d (kv %d, head dim %d), vocab %d, context %d\n", c.num_layers,
                c.hidden_size, c.intermediate_size, c.num_heads, c.num_kv_heads, c.head_dim, c.vocab_size,
                c.max_position_embeddings);
    const size_t params = j["parameters"], weights_bytes = j["weights_bytes"];
    std::printf("parameters:    %zu (%.2f M) in %zu tensors\n", params, static_cast<double>(params) / 1e6, j["tensors"].get<size_t>());
    std::printf("dtype:        ");
    for (const auto& [name, n] : j["dtypes"].items()) std::printf(" %s %zu", name.c_str(), n.get<size_t>());
    std::printf("\nweights:       %.1f MiB as stored\n", static_cast<double>(weights_bytes) / (1 << 20));
    // Activations of a forward pass of batch 1 x context (the engine's working set), float32.
    const double acts = static_cast<double>(c.max_position_embeddings) *
                        (4.0 * c.hidden_size + 2.0 * c.num_heads * c.head_dim + 2.0 * c.num_kv_heads * c.head_dim +
                         2.0 * c.intermediate_size) * 4;
    const double kv = 2.0 * c.num_layers * c.max_position_embeddings * c.num_kv_heads * c.head_dim * 4;
    std::printf("memory est.:   %.1f MiB weights + %.1f MiB activations + %.1f MiB KV cache (batch 1, full context)\n",
                static_cast<double>(weights_bytes) / (1 << 20), acts / (1 << 20), kv / (1 << 20));
    std::printf("tokenizer:     %s\n", loaded->tokenizer ? "loaded" : "none found");
    if (j["adapter"].is_object()) std::printf("adapter:       %s\n", j["adapter"].dump().c_str());
    if (args.has("id")) std::printf("model id:      %s\n", j["id"].get<std::string>().c_str());
    return 0;
  });
}

}  // namespace pocketllm::cli
