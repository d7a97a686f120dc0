// The architectures of the PocketLLM and MeZO papers besides Llama: OPT, GPT-2 and RoBERTa (masked LM).
// One file each in src/; all read canonical Hugging Face tensor names and layouts.
#pragma once

#include <memory>

#include "pocketllm/client/transformer_base.h"

namespace pocketllm {

// OPTForCausalLM: learned positions (offset 2), pre-LN (or post-LN when do_layer_norm_before is false),
// ReLU MLP, project_in/project_out when word_embed_proj_dim differs, head tied to the embeddings.
Result<std::unique_ptr<LanguageModel>> create_opt(ModelConfig config, WeightStore weights);
// GPT2LMHeadModel: Conv1D weights (in x out), learned positions, pre-LN, GELU (tanh), tied head.
Result<std::unique_ptr<LanguageModel>> create_gpt2(ModelConfig config, WeightStore weights);
// RobertaForMaskedLM: bidirectional post-LN encoder, positions offset by padding_idx + 1, token type 0,
// masked-LM head (dense, GELU, LayerNorm, decoder tied to the embeddings, plus a bias).
Result<std::unique_ptr<LanguageModel>> create_roberta(ModelConfig config, WeightStore weights);

Result<std::unique_ptr<LanguageModel>> create_model(ModelConfig config, WeightStore weights);

}  // namespace pocketllm
