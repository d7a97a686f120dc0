#include "gguf_names.h"

#include <cstdlib>
#include <iterator>

namespace pocketllm {
namespace {

struct Pair {
  const char* gguf;
  const char* hf;
};
// Per-layer names, without the "blk.N." / "model.layers.N." prefixes.
constexpr Pair kLayer[] = {
    {"attn_norm.weight", "input_layernorm.weight"},     {"attn_q.weight", "self_attn.q_proj.weight"},
    {"attn_k.weight", "self_attn.k_proj.weight"},       {"attn_v.weight", "self_attn.v_proj.weight"},
    {"attn_q.bias", "self_attn.q_proj.bias"},           {"attn_k.bias", "self_attn.k_proj.bias"},
    {"attn_v.bias", "self_attn.v_proj.bias"},           {"attn_output.weight", "self_attn.o_proj.weight"},
    {"attn_output.bias", "self_attn.o_proj.bias"},      {"ffn_norm.weight", "post_attention_layernorm.weight"},
    {"ffn_gate.weight", "mlp.gate_proj.weight"},        {"ffn_up.weight", "mlp.up_proj.weight"},
    {"ffn_down.weight", "mlp.down_proj.weight"},        {"attn_q_norm.weight", "self_attn.q_norm.weight"},
    {"attn_k_norm.weight", "self_attn.k_norm.weight"},
};
// Gemma 3 (sandwich norms): ffn_norm is the MLP's input norm, and the attention and MLP outputs have
// norms of their own; the other names are the table above's.
constexpr Pair kSandwich[] = {
    {"post_attention_norm.weight", "post_attention_layernorm.weight"},
    {"ffn_norm.weight", "pre_feedforward_layernorm.weight"},
    {"post_ffw_norm.weight", "post_feedforward_layernorm.weight"},
};
constexpr Pair kGlobal[] = {
    {"token_embd.weight", "model.embed_tokens.weight"},
    {"output_norm.weight", "model.norm.weight"},
    {"output.weight", "lm_head.weight"},
};

// "<prefix><digits>.<rest>" -> layer and rest.
bool split_layer(const std::string& name, const std::string& prefix, std::string* layer, std::string* rest) {
  if (name.compare(0, prefix.size(), prefix) != 0) return false;
  const size_t dot = name.find('.', prefix.size());
  if (dot == std::string::npos || dot == prefix.size() || dot - prefix.size() > 6) return false;
  for (size_t i = prefix.size(); i < dot; ++i)
    if (name[i] < '0' || name[i] > '9') return false;
  if (name[prefix.size()] == '0' && dot - prefix.size() > 1) return false;  // no leading zeros: one spelling per layer
  *layer = name.substr(prefix.size(), dot - prefix.size());
  *rest = name.substr(dot + 1);
  return true;
}

bool map(const std::string& from, std::string* to, const std::string& from_prefix, const std::string& to_prefix, bool to_hf,
         bool sandwich) {
  for (const auto& p : kGlobal) {
    if (from == (to_hf ? p.gguf : p.hf)) {
      *to = to_hf ? p.hf : p.gguf;
      return true;
    }
  }
  std::string layer, rest;
  if (!split_layer(from, from_prefix, &layer, &rest)) return false;
  auto find = [&](const Pair* begin, const Pair* end) {
    for (const Pair* p = begin; p != end; ++p)
      if (rest == (to_hf ? p->gguf : p->hf)) {
        *to = to_prefix + layer + "." + (to_hf ? p->hf : p->gguf);
        return true;
      }
    return false;
  };
  if (sandwich) {
    if (find(std::begin(kSandwich), std::end(kSandwich))) return true;
    if (rest == (to_hf ? "ffn_norm.weight" : "post_attention_layernorm.weight")) return false;  // named differently here
  }
  return find(std::begin(kLayer), std::end(kLayer));
}

}  // namespace

bool gguf_to_hf_name(const std::string& gguf, std::string* hf, bool sandwich) {
  return map(gguf, hf, "blk.", "model.layers.", true, sandwich);
}
bool hf_to_gguf_name(const std::string& hf, std::string* gguf, bool sandwich) {
  return map(hf, gguf, "model.layers.", "blk.", false, sandwich);
}

bool is_norm_weight(const std::string& name) {
  const std::string tail = "norm.weight";
  return name.size() >= tail.size() && name.compare(name.size() - tail.size(), tail.size(), tail) == 0;
}

bool gguf_is_rotary_projection(const std::string& gguf) {
  std::string layer, rest;
  if (!split_layer(gguf, "blk.", &layer, &rest)) return false;
  return rest == "attn_q.weight" || rest == "attn_k.weight" || rest == "attn_q.bias" || rest == "attn_k.bias";
}

std::string spm_piece_from_gguf(std::string_view piece) {
  static const std::string kSpace = "\xE2\x96\x81";  // U+2581
  std::string out;
  out.reserve(piece.size());
  for (size_t i = 0; i < piece.size();) {
    if (piece.compare(i, kSpace.size(), kSpace) == 0) {
      out += ' ';
      i += kSpace.size();
    } else {
      out += piece[i++];
    }
  }
  return out;
}

std::string spm_piece_to_gguf(std::string_view piece) {
  std::string out;
  out.reserve(piece.size());
  for (char c : piece) {
    if (c == ' ') out += "\xE2\x96\x81";
    else out += c;
  }
  return out;
}

}  // namespace pocketllm
