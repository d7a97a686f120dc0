#include "pocketllm/cli/lora_args.h"

#include "pocketllm/common/update_log.h"

namespace pocketllm::cli {

std::string read_lora_args(const Args& args, LoraConfig* out) {
  *out = LoraConfig();
  auto rank = args.get_u64("lora-rank", 0);
  if (!rank || rank.value() > 1024) return "--lora-rank must be 1..1024";
  if (rank.value() == 0) {
    if (args.has("lora-rank")) return "--lora-rank must be 1..1024";
    if (args.has("lora-alpha") || args.has("lora-targets") || args.has("lora-init-seed"))
      return "--lora-alpha/--lora-targets/--lora-init-seed need --lora-rank";
    return "";
  }
  out->rank = static_cast<int>(rank.value());
  auto alpha = args.get_double("lora-alpha", 0);
  if (!alpha || !(alpha.value() >= 0) || alpha.value() > 1e6) return "--lora-alpha must be a number in [0, 1e6]";
  out->alpha = static_cast<float>(alpha.value());
  out->targets = args.get("lora-targets", out->targets);
  if (!parse_seed_text(args.get("lora-init-seed", "0"), &out->init_seed)) return "--lora-init-seed must be 0x<hex> or decimal";
  if (Status st = out->validate(); !st) return st.message();
  return "";
}

}  // namespace pocketllm::cli
