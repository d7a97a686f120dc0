// Creating a model of any registered architecture (Llama, OPT, GPT-2, RoBERTa; client/src/arch/, one
// file each, docs/architecture.md) from its config and canonical weights.
#pragma once

#include <memory>

#include "pocketllm/client/model.h"
#include "pocketllm/client/model_config.h"
#include "pocketllm/client/weights.h"

namespace pocketllm {

// Checks that `weights` hold every tensor the architecture of `config` needs, with the right shapes.
Result<std::unique_ptr<LanguageModel>> create_model(ModelConfig config, WeightStore weights);

}  // namespace pocketllm
