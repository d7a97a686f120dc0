// What a loaded model is, as JSON: the one description `pocketllm info --json` prints and the SDK's
// pllm_model_info returns (field by field in docs/mobile.md, "Model facts").
#pragma once

#include <nlohmann/json.hpp>

#include "pocketllm/client/loader.h"

namespace pocketllm {

// {"format", "name", "architecture", "hf_architecture", "model_type", "layers", "hidden_size",
//  "intermediate_size", "heads", "kv_heads", "head_dim", "vocab_size", "context_length", "parameters",
//  "tensors", "dtypes": {dtype: elements}, "weights_bytes", "tokenizer", "eos_token_id",
//  "adapter": null or {"rank", "alpha", "targets", "init_seed"}}
nlohmann::json model_summary(const LoadedModel& loaded);

}  // namespace pocketllm
