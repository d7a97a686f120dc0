// Architecture hyper-parameters, in Hugging Face config.json terms, for every architecture the engine
// runs. Loaders fill it; models read it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pocketllm {

enum class Architecture { kLlama, kOpt, kGpt2, kRoberta, kGemma3 };
const char* architecture_name(Architecture a);

struct RopeScaling {
  std::string type;  // "" (none), "llama3" or "linear" (positions divided by factor: Gemma 3's global layers)
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
  bool qk_norm = false;  // Qwen3, Gemma 3: an RMSNorm of head_dim over every head of q and of k, before the rotary embedding
  // Gemma 3 (Architecture::kGemma3, run by the Llama decoder)
  float norm_weight_offset = 0.0f;   // every RMSNorm scales by (offset + weight): 1 for Gemma's (1 + w)
  float embed_scale = 1.0f;          // embedding rows times this (Gemma: sqrt(hidden_size))
  float attention_scale = 0.0f;      // q·k scale; 0: 1 / sqrt(head_dim) (Gemma: query_pre_attn_scalar^-0.5)
  bool sandwich_norms = false;       // Gemma: attention and MLP outputs normed before the residual add too
  int sliding_window = 0;            // keys a sliding layer's query sees: the W most recent positions, its own included
  std::vector<bool> sliding_layers;  // per layer: true = sliding-window attention (empty: none)
  float rope_local_theta = 0.0f;     // rope base of the sliding layers, unscaled (0: rope_theta and its scaling)
  // OPT / GPT-2 / RoBERTa
  int word_embed_proj_dim = 0;      // OPT: embedding width when it differs from hidden_size (opt-350m)
  bool do_layer_norm_before = true; // OPT: pre-LN (false: post-LN, opt-350m)
  int position_offset = 0;          // learned positions start at this row (OPT 2, RoBERTa padding_idx + 1)
  int type_vocab_size = 0;          // RoBERTa token types
  std::string activation;           // "silu", "gelu_new", "gelu", "relu", "gelu_pytorch_tanh" (Gemma's GeGLU)
  int bos_token_id = -1;
  int eos_token_id = -1;
  int pad_token_id = -1;
};

}  // namespace pocketllm
