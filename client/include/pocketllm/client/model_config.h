// Architecture hyper-parameters, in Hugging Face config.json terms, for every architecture the engine
// runs. Loaders fill it; models read it.
#pragma once

#include <cstdint>
#include <string>

namespace pocketllm {

enum class Architecture { kLlama, kOpt, kGpt2, kRoberta };
const char* architecture_name(Architecture a);

struct RopeScaling {
  std::string type;  // "" (none) or "llama3"
  float factor = 1.0f;
  float low_freq_factor = 1.0f;
  float high_freq_factor = 4.0f;
  int original_max_position_embeddings = 8192;
};

struct ModelConfig {
  Architecture arch = Architecture::kLlama;
  std::string hf_architecture;  // e.g. "LlamaForCausalLM"
  std::string model_type;       // e.g. "llama", "qwen2"
  int vocab_size = 0;
  int hidden_size = 0;
  int intermediate_size = 0;
  int num_layers = 0;
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int max_position_embeddings = 2048;
  float norm_eps = 1e-5f;
  float rope_theta = 10000.0f;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_qkv_bias = false;  // Qwen2
  bool attention_out_bias = false;
  bool mlp_bias = false;
  bool qk_norm = false;  // Qwen3: an RMSNorm of head_dim over every head of q and of k, before the rotary embedding
  // OPT / GPT-2 / RoBERTa
  int word_embed_proj_dim = 0;      // OPT: embedding width when it differs from hidden_size (opt-350m)
  bool do_layer_norm_before = true; // OPT: pre-LN (false: post-LN, opt-350m)
  int position_offset = 0;          // learned positions start at this row (OPT 2, RoBERTa padding_idx + 1)
  int type_vocab_size = 0;          // RoBERTa token types
  std::string activation;           // "silu", "gelu_new", "gelu", "relu"
  int bos_token_id = -1;
  int eos_token_id = -1;
  int pad_token_id = -1;
};

}  // namespace pocketllm
