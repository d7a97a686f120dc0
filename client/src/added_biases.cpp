#include "pocketllm/client/added_biases.h"

#include "pocketllm/client/lora.h"
#include "pocketllm/client/model.h"

namespace pocketllm {

Result<size_t> add_zero_biases(LanguageModel& model, const std::string& targets) {
  if (targets.empty()) return size_t{0};
  WeightStore& weights = model.weights();
  for (const auto& w : weights.all())
    if (w->added_bias != nullptr) return invalid_argument("the model already has added biases");
  LoraConfig select;
  select.targets = targets;
  const bool in_out = model.config().arch == Architecture::kGpt2;  // Conv1D: stored [in, out]
  size_t added = 0;
  for (const std::string& module : lora_target_modules(weights, select)) {
    if (weights.find(module + ".bias") != nullptr) continue;  // the checkpoint has one: train that
    Weight* base = weights.find_mutable(module + ".weight");
    const int64_t out = in_out ? base->shape[1] : base->shape[0];
    Weight& b = weights.add_owned_f32(module + ".bias", {out}, std::vector<float>(static_cast<size_t>(out), 0.0f));
    b.mutable_f32 = static_cast<float*>(const_cast<void*>(b.data));
    base->added_bias = &b;
    ++added;
  }
  if (added == 0)
    return invalid_argument("added biases '" + targets + "' select no linear layer without a bias (e.g. all-linear, q_proj,v_proj)");
  return added;
}

}  // namespace pocketllm
