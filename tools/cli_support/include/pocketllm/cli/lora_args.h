// The adapter options every command that starts training shares: --lora-rank, --lora-alpha,
// --lora-targets, --lora-init-seed (docs/training.md section 4).
#pragma once

#include <string>
#include <vector>

#include "pocketllm/cli/args.h"
#include "pocketllm/client/lora.h"

namespace pocketllm::cli {

// The option names, to add to a command's list.
inline const std::vector<std::string>& lora_option_names() {
  static const std::vector<std::string> names = {"lora-rank", "lora-alpha", "lora-targets", "lora-init-seed"};
  return names;
}

// Reads the options into `out` (rank 0 when --lora-rank is absent). Returns a usage message, or "".
std::string read_lora_args(const Args& args, LoraConfig* out);

}  // namespace pocketllm::cli
