// Added biases (docs/training.md, "Added biases"): zero-initialised output biases on linear layers that
// have none (every projection of a Llama), trained like any tensor — BitFit on a bias-free model. Named
// as a checkpoint with biases names them (model.layers.0.self_attn.q_proj.bias, …), so z, update logs and
// exports address them as ordinary tensors, and a merged export is a Hugging Face checkpoint with biases.
#pragma once

#include <string>

#include "pocketllm/common/status.h"

namespace pocketllm {

class LanguageModel;

// Adds a zero bias [out] to every linear layer of the transformer blocks that `targets` selects (module
// suffixes as --lora-targets, e.g. "q_proj,v_proj", or "all-linear") and that has no bias of its own.
// "" adds nothing. Returns how many were added; targets that select no bias-free linear layer, or a model
// that already has added biases, are errors.
Result<size_t> add_zero_biases(LanguageModel& model, const std::string& targets);

}  // namespace pocketllm
