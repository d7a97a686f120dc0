// Low-rank adapters (LoRA) as a trainable set over a frozen base (docs/training.md §"Adapters").
//
// For every targeted linear weight W [out, in] of the base model, two float32 tensors are added to the
// weight store under Hugging Face PEFT's names,
//   base_model.model.<module>.lora_A.weight   [r, in]
//   base_model.model.<module>.lora_B.weight   [out, r]
// and the layer computes x W^T + (alpha / r) * (x A^T) B^T. W is never copied or changed; A and B are
// ordinary trainable tensors, so z, the update log, snapshots and federation address them by name like
// any other tensor. They are excluded from the base model's id. Initialisation is a pure function of
// (init seed, tensor name): A = z_gaussian(init seed, tag(A name)) / sqrt(in), B = 0 (PEFT starts from
// B = 0 so the adapted model equals the base model).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pocketllm/client/model_config.h"
#include "pocketllm/client/weights.h"
#include "pocketllm/common/status.h"

namespace pocketllm {

struct LoraConfig {
  int rank = 0;            // r; 0 = no adapters
  float alpha = 0;         // PEFT's lora_alpha; the adapter's output is scaled by alpha / r (0: alpha = r)
  std::string targets = "q_proj,v_proj";  // module-name suffixes (PEFT's target_modules), or "all-linear"
  uint64_t init_seed = 0;  // A's initial values (B starts at zero)

  bool enabled() const { return rank > 0; }
  float scale() const { return (alpha > 0 ? alpha : static_cast<float>(rank)) / static_cast<float>(rank); }
  std::vector<std::string> target_list() const;  // targets split at commas, trimmed
  nlohmann::json to_json() const;                 // {"rank", "alpha", "targets", "init_seed"}
  // Validates ranges (rank 1..1024, finite alpha >= 0, non-empty targets) with errors naming the field.
  static Result<LoraConfig> from_json(const nlohmann::json& j, const std::string& where);
  Status validate() const;
};

// "base_model.model." + module + ".lora_A.weight" (B likewise), module = the base weight's name
// without its ".weight" suffix.
std::string lora_a_name(const std::string& module);
std::string lora_b_name(const std::string& module);
bool is_lora_tensor_name(const std::string& name);

// The base weights the config targets: 2-D weights inside the transformer blocks (all of them are linear
// layers in every supported architecture; embeddings and the output head are never targeted) whose
// module name equals a target or ends with "." + target. Sorted as the store holds them.
std::vector<std::string> lora_target_modules(const WeightStore& weights, const LoraConfig& config);

// Adds the adapters (A initialised by the rule above, B = 0), attaches them to their base weights and
// makes them trainable. Returns the number of adapted modules; an empty selection is an error naming the
// targets; a store that already has adapters is refused.
Result<size_t> add_lora_adapters(WeightStore& weights, const ModelConfig& config, const LoraConfig& lora);

// W + scale * B A for one adapted weight, as float32 [out, in] (or [in, out] for GPT-2's Conv1D layout):
// the merged weight an export writes. `w` must have an adapter.
std::vector<float> merged_weight(const Weight& w, bool in_out_layout);

}  // namespace pocketllm

namespace pocketllm {

class LanguageModel;

// The trainable set of a run, a task or a session: the adapters (when `lora` is enabled) plus the tensors
// the patterns select (expand_trainable shorthands allowed; "none" or "" selects no base tensor). Returns
// the number of trainable tensors; selecting nothing at all is an error.
Result<size_t> select_trainable(LanguageModel& model, const std::string& trainable, const LoraConfig& lora);

// Step scales (docs/training.md, "Step scales"): "PATTERN=S[,PATTERN=S...]", each PATTERN one name pattern
// or shorthand; every trainable tensor it selects gets z_scale S (perturbed and updated by (c * S) * z,
// i.e. trained as theta = S * phi with plain ZO on phi). Later items win. An empty spec changes nothing;
// S outside (0, 1000], a malformed item or one that selects no trainable tensor is an error.
Status apply_step_scales(LanguageModel& model, const std::string& spec);

}  // namespace pocketllm

// ---- Hugging Face PEFT adapter directories (docs/training.md §"Adapters") ------------------------------
namespace pocketllm {

// Writes adapter_config.json (peft_type LORA, r, lora_alpha, target_modules, fan_in_fan_out for GPT-2's
// Conv1D, bias "none") and adapter_model.safetensors (every lora_A/lora_B tensor, F32, under the names
// PEFT saves) into `out_dir`. Refused when tensors other than adapters are trainable too (PEFT's LoRA
// format cannot hold them: export the merged model instead) or when the model has no adapters.
Status export_peft_adapter(const LanguageModel& model, const LoraConfig& lora, const std::string& base_model_name,
                           const std::string& out_dir);

// Reads a PEFT LoRA adapter directory onto `model`: the config (LORA, no bias, no DoRA/rsLoRA, no per-layer
// rank/alpha patterns, target_modules a list or "all-linear"), then every A/B tensor, whose names and
// shapes must be exactly the adapters this config adds to this model. Returns the config read.
Result<LoraConfig> load_peft_adapter(LanguageModel& model, const std::string& dir);

}  // namespace pocketllm
