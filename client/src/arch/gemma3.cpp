// Gemma 3 text models (Gemma3ForCausalLM, config.json model_type "gemma3_text": Gemma 3 270M and 1B).
// The decoder is the Llama one with ModelConfig's Gemma fields set here: every RMSNorm scales by
// (1 + w), four norms per layer (the attention and MLP outputs are normed before the residual add),
// q/k norms, GeGLU with the tanh GELU, embeddings times sqrt(hidden_size), q·k scaled by
// query_pre_attn_scalar^-0.5, and sliding-window layers (layer_types) with their own rope base
// (rope_local_base_freq, unscaled) beside full-attention layers (rope_theta, with rope_scaling).
#include <cmath>

#include "arch/architecture.h"
#include "arch/llama.h"

namespace pocketllm {
namespace {

// layer_types ("sliding_attention" / "full_attention"), or the older sliding_window_pattern: every
// pattern-th layer full, the others sliding.
Status parse_layer_types(const nlohmann::json& j, ModelConfig* c, const std::string& where) {
  c->sliding_layers.assign(static_cast<size_t>(c->num_layers), false);
  if (j.contains("layer_types") && !j["layer_types"].is_null()) {
    const nlohmann::json& t = j["layer_types"];
    if (!t.is_array() || t.size() != static_cast<size_t>(c->num_layers))
      return corrupt(where + ": \"layer_types\" must list one type per layer (" + std::to_string(c->num_layers) + ")");
    for (size_t l = 0; l < t.size(); ++l) {
      const std::string type = t[l].is_string() ? t[l].get<std::string>() : std::string();
      if (type != "sliding_attention" && type != "full_attention")
        return corrupt(where + ": layer_types[" + std::to_string(l) + "] is not sliding_attention or full_attention");
      c->sliding_layers[l] = type == "sliding_attention";
    }
    return Status::ok();
  }
  int pattern = 6;  // Gemma 3's released checkpoints
  for (const char* key : {"sliding_window_pattern", "_sliding_window_pattern"})
    POCKETLLM_RETURN_IF_ERROR(arch_config::number(j, key, &pattern, where, false));
  if (pattern <= 0) return corrupt(where + ": sliding_window_pattern must be positive");
  for (int l = 0; l < c->num_layers; ++l) c->sliding_layers[static_cast<size_t>(l)] = (l + 1) % pattern != 0;
  return Status::ok();
}

// What the engine does not run is refused by name rather than run differently.
Status refuse_unsupported(const nlohmann::json& j, const std::string& where) {
  for (const char* key : {"final_logit_softcapping", "attn_logit_softcapping"})
    if (j.contains(key) && !j[key].is_null()) return unsupported(where + ": \"" + key + "\" is set (logit soft-capping is not supported)");
  if (j.value("use_bidirectional_attention", false))
    return unsupported(where + ": use_bidirectional_attention is true (EmbeddingGemma encoders are not supported)");
  const std::string act = j.value("hidden_activation", j.value("hidden_act", std::string("gelu_pytorch_tanh")));
  if (act != "gelu_pytorch_tanh")
    return unsupported(where + ": hidden_activation '" + act + "' (Gemma 3 runs gelu_pytorch_tanh)");
  return Status::ok();
}

Result<ModelConfig> parse_gemma3_config(const nlohmann::json& j, ModelConfig c, const std::string& where) {
  using namespace arch_config;
  POCKETLLM_RETURN_IF_ERROR(refuse_unsupported(j, where));
  POCKETLLM_RETURN_IF_ERROR(read_fields(j, &c, {required("vocab_size", &ModelConfig::vocab_size), required("hidden_size", &ModelConfig::hidden_size),
                                                required("intermediate_size", &ModelConfig::intermediate_size),
                                                required("num_hidden_layers", &ModelConfig::num_layers),
                                                required("num_attention_heads", &ModelConfig::num_heads)}, where));
  // Gemma3TextConfig's defaults where a field is left out.
  c.num_kv_heads = c.num_heads;
  c.head_dim = 256;
  c.max_position_embeddings = 131072;
  c.norm_eps = 1e-6f;
  c.rope_theta = 1e6f;
  c.rope_local_theta = 1e4f;
  c.sliding_window = 4096;
  float query_pre_attn_scalar = 256;
  POCKETLLM_RETURN_IF_ERROR(read_fields(j, &c, {optional("num_key_value_heads", &ModelConfig::num_kv_heads), optional("head_dim", &ModelConfig::head_dim),
                                                optional("max_position_embeddings", &ModelConfig::max_position_embeddings),
                                                optional("rms_norm_eps", &ModelConfig::norm_eps), optional("rope_theta", &ModelConfig::rope_theta),
                                                optional("rope_local_base_freq", &ModelConfig::rope_local_theta),
                                                optional("sliding_window", &ModelConfig::sliding_window)},
                                            where));
  POCKETLLM_RETURN_IF_ERROR(number(j, "query_pre_attn_scalar", &query_pre_attn_scalar, where, false));
  if (c.num_heads <= 0 || c.hidden_size <= 0 || c.num_layers <= 0) return corrupt(where + ": sizes must be positive");
  if (!(query_pre_attn_scalar > 0) || !std::isfinite(query_pre_attn_scalar)) return corrupt(where + ": query_pre_attn_scalar must be positive");
  if (c.sliding_window <= 0) return corrupt(where + ": sliding_window must be positive");
  if (!(c.rope_local_theta > 0) || !(c.rope_theta > 0)) return corrupt(where + ": rope bases must be positive");
  POCKETLLM_RETURN_IF_ERROR(parse_layer_types(j, &c, where));
  POCKETLLM_RETURN_IF_ERROR(parse_rope_scaling(j, &c, where));
  c.tie_word_embeddings = j.value("tie_word_embeddings", true);
  c.attention_qkv_bias = c.attention_out_bias = j.value("attention_bias", false);
  c.activation = "gelu_pytorch_tanh";
  c.qk_norm = true;
  c.sandwich_norms = true;
  c.norm_weight_offset = 1.0f;
  c.embed_scale = static_cast<float>(std::sqrt(static_cast<double>(c.hidden_size)));
  c.attention_scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(query_pre_attn_scalar)));
  special_tokens(j, &c);
  return c;
}

nlohmann::json gemma3_write_config(const ModelConfig& c) {
  nlohmann::json types = nlohmann::json::array();
  for (bool sliding : c.sliding_layers) types.push_back(sliding ? "sliding_attention" : "full_attention");
  const double scalar = 1.0 / (static_cast<double>(c.attention_scale) * c.attention_scale);
  nlohmann::json j = {{"architectures", {c.hf_architecture}}, {"model_type", c.model_type}, {"vocab_size", c.vocab_size},
                      {"hidden_size", c.hidden_size}, {"intermediate_size", c.intermediate_size},
                      {"num_hidden_layers", c.num_layers}, {"num_attention_heads", c.num_heads},
                      {"num_key_value_heads", c.num_kv_heads}, {"head_dim", c.head_dim},
                      {"max_position_embeddings", c.max_position_embeddings}, {"rms_norm_eps", c.norm_eps},
                      {"rope_theta", c.rope_theta}, {"rope_local_base_freq", c.rope_local_theta},
                      {"sliding_window", c.sliding_window}, {"layer_types", types},
                      {"query_pre_attn_scalar", std::round(scalar * 1e4) / 1e4}, {"tie_word_embeddings", c.tie_word_embeddings},
                      {"hidden_activation", "gelu_pytorch_tanh"}, {"final_logit_softcapping", nullptr},
                      {"attn_logit_softcapping", nullptr}, {"attention_bias", c.attention_out_bias}};
  write_rope_scaling(c, &j);
  return j;
}

}  // namespace

extern const ArchitectureSpec kGemma3Architecture = {Architecture::kGemma3, "gemma3",             {"gemma3_text"}, "Gemma3ForCausalLM",
                                                     parse_gemma3_config,   llama_canonical_name, llama_resolve_ties,
                                                     gemma3_write_config,   create_llama};

}  // namespace pocketllm
