// Tensor names between GGUF (llama.cpp's "blk.N.attn_q.weight") and the canonical Hugging Face names
// ("model.layers.N.self_attn.q_proj.weight") for the llama, qwen2, qwen3 and gemma3 architectures, and SentencePiece
// pieces between GGUF (spaces as U+2581) and the engine (spaces as ' ').
#pragma once

#include <string>
#include <string_view>

namespace pocketllm {

// `sandwich`: Gemma 3's four norms per layer (post_attention_norm, ffn_norm = pre_feedforward_layernorm,
// post_ffw_norm).
bool gguf_to_hf_name(const std::string& gguf, std::string* hf, bool sandwich = false);
bool hf_to_gguf_name(const std::string& hf, std::string* gguf, bool sandwich = false);
// blk.N.attn_q / attn_k weights and biases: stored in Meta's interleaved rotary row order by llama.cpp's
// `llama` architecture.
bool gguf_is_rotary_projection(const std::string& gguf);

// A norm's weight ("…norm.weight", in GGUF or HF naming): what gemma3 files store as 1 + w.
bool is_norm_weight(const std::string& name);

std::string spm_piece_from_gguf(std::string_view piece);
std::string spm_piece_to_gguf(std::string_view piece);

}  // namespace pocketllm
