// pocketllm: the device-side command-line tool.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "commands.h"
#include "pocketllm/common/perturbation.h"

namespace {

void print_usage(FILE* out) {
  std::fprintf(out,
               "pocketllm %s — on-device zeroth-order fine-tuning\n"
               "\n"
               "usage: pocketllm <command> [options]     (pocketllm <command> --help for its options)\n"
               "\n"
               "commands:\n"
               "  perturb   print the perturbation direction z for a seed and tensor (the golden generator)\n"
               "  finetune  zeroth-order fine-tuning on your data into a resumable run directory\n"
               "  eval      loss, perplexity or accuracy of a model or a run on a dataset\n"
               "  classify  the label a model or a run gives each text, with the label probabilities\n"
               "  export    write a run's fine-tuned model (HF directory or GGUF, merged) or its adapters (PEFT)\n"
               "  convert   convert a model to GGUF (f32, f16, bf16, q8_0, q4_0) for llama.cpp and pocketllm\n"
               "  gguf      validate a GGUF file and print its metadata and tensor table\n"
               "  generate  generate text from a prompt\n"
               "  info      describe a model: architecture, parameters, dtypes, memory\n"
               "  federate  take part in federated fine-tuning with an aggregation server\n"
               "  replay    apply an update log to the tensors of a safetensors file\n"
               "  privacy   the differential-privacy accountant: epsilon, noise, rounds of a budget\n"
               "  base-weights  a federated task's trainable tensors (adapters included) at their start, for snapshots\n"
               "  version   print the version and the perturbation spec version\n",
               POCKETLLM_VERSION);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    print_usage(stderr);
    return 2;
  }
  const std::string command = argv[1];
  const std::vector<std::string> rest(argv + 2, argv + argc);
  try {
    if (command == "-h" || command == "--help" || command == "help") {
      print_usage(stdout);
      return 0;
    }
    if (command == "version" || command == "--version") {
      std::printf("pocketllm %s (perturbation spec v%d)\n", POCKETLLM_VERSION, pocketllm::kPerturbationSpecVersion);
      return 0;
    }
    if (command == "perturb") return pocketllm::cli::cmd_perturb(rest);
    if (command == "replay") return pocketllm::cli::cmd_replay(rest);
    if (command == "generate") return pocketllm::cli::cmd_generate(rest);
    if (command == "info") return pocketllm::cli::cmd_info(rest);
    if (command == "finetune") return pocketllm::cli::cmd_finetune(rest);
    if (command == "eval") return pocketllm::cli::cmd_eval(rest);
    if (command == "classify") return pocketllm::cli::cmd_classify(rest);
    if (command == "export") return pocketllm::cli::cmd_export(rest);
    if (command == "convert") return pocketllm::cli::cmd_convert(rest);
    if (command == "gguf") return pocketllm::cli::cmd_gguf(rest);
    if (command == "base-weights") return pocketllm::cli::cmd_base_weights(rest);
    if (command == "federate") return pocketllm::cli::cmd_federate(rest);
    if (command == "privacy") return pocketllm::cli::cmd_privacy(rest);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pocketllm %s: internal error: %s\n", command.c_str(), e.what());
    return 1;
  }
  std::fprintf(stderr, "pocketllm: unknown command '%s'\n\n", command.c_str());
  print_usage(stderr);
  return 2;
}
