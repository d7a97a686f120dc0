// Gemma 3 text models (Gemma3ForCausalLM, config.json model_type "gemma3_text": Gemma 3 270M and 1B), and
// the language model of the multimodal ones (model_type "gemma3": 4B and up).
// The decoder is the Llama one with ModelConfig's Gemma fields set here: every RMSNorm scales by
// (1 + w), four norms per layer (the attention and MLP outputs are normed before the residual add),
// q/k norms, GeGLU with the tanh GELU, embeddings times sqrt(hidden_size), q·k scaled by
// query_pre_attn_scalar^-0.5, and sliding-window layers (layer_types) with their own rope base
// (rope_local_base_freq, unscaled) beside full-attention layers (rope_theta, with rope_scaling).
#include <cmath>
#include <string>

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

Result<ModelConfig> parse_text_config(const nlohmann::json& j, ModelConfig c, const std::string& where);

// A multimodal Gemma 3 (model_type "gemma3", Gemma3ForConditionalGeneration: 4B and up) is run and
// exported as its language model: text_config's fields, the vision tower's tensors left out.
Result<ModelConfig> parse_gemma3_config(const nlohmann::json& j, ModelConfig c, const std::string& where) {
  if (c.model_type != "gemma3") return parse_text_config(j, c, where);
  if (!j.contains("text_config") || !j["text_config"].is_object()) return corrupt(where + ": a gemma3 config without a \"text_config\" object");
  nlohmann::json text = j["text_config"];
  for (const char* key : {"bos_token_id", "eos_token_id", "pad_token_id"})
    if (!text.contains(key) && j.contains(key)) text[key] = j[key];
  c.model_type = "gemma3_text";
  c.hf_architecture = "Gemma3ForCausalLM";
  return parse_text_config(text, c, where + " text_config");
}

Result<ModelConfig> parse_text_config(const nlohmann::json& j, ModelConfig c, const std::string& where) {
  using namespace arch_config;
  POCKETLLM_RETURN_IF_ERROR(refuse_unsupported(j, where));
  // Gemma3TextConfig's defaults where a field is left out (the multimodal checkpoints' text_config leaves
  // out most of them); a wrong guess shows as a tensor of the wrong shape, named.
  c.vocab_size = 262208;
  c.hidden_size = 2304;
  c.intermediate_size = 9216;
  c.num_layers = 26;
  c.num_heads = 8;
  c.num_kv_heads = 4;
  c.head_dim = 256;
  c.max_position_embeddings = 131072;
  c.norm_eps = 1e-6f;
  c.rope_theta = 1e6f;
  c.rope_local_theta = 1e4f;
  c.sliding_window = 4096;
  float query_pre_attn_scalar = 256;
  POCKETLLM_RETURN_IF_ERROR(read_fields(j, &c, {optional("vocab_size", &ModelConfig::vocab_size), optional("hidden_size", &ModelConfig::hidden_size),
                                                optional("intermediate_size", &ModelConfig::intermediate_size),
                                                optional("num_hidden_layers", &ModelConfig::num_layers),
                                                optional("num_attention_heads", &ModelConfig::num_heads),
                                                optional("num_key_value_heads", &ModelConfig::num_kv_heads), optional("head_dim", &ModelConfig::head_dim),
                                                optional("max_position_embeddings", &ModelConfig::max_position_embeddings),
                                                optional("rms_norm_eps", &ModelConfig::norm_eps), optional("rope_theta", &ModelConfig::rope_theta),
                                                optional("rope_local_base_freq", &ModelConfig::rope_local_theta),
                                                optional("sliding_window", &ModelConfig::sliding_window)},
                                            where));
  POCKETLLM_RETURN_IF_ERROR(number(j, "query_pre_attn_scalar", &query_pre_attn_scalar, where, false));
  if (c.num_heads <= 0 || c.num_kv_heads <= 0 || c.hidden_size <= 0 || c.num_layers <= 0 || c.vocab_size <= 0 ||
      c.intermediate_size <= 0 || c.head_dim <= 0 || c.num_layers > 4096)
    return corrupt(where + ": sizes must be positive");
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

// Multimodal checkpoints hold the language model under "language_model." (or, saved by newer
// transformers, "model.language_model."); the vision tower and projector are not run.
bool gemma3_canonical_name(const std::string& n, std::string* out) {
  auto starts = [&](const char* p) { return n.compare(0, std::char_traits<char>::length(p), p) == 0; };
  for (const char* skip : {"vision_tower.", "multi_modal_projector.", "model.vision_tower.", "model.multi_modal_projector."})
    if (starts(skip)) return false;
  if (starts("language_model.")) *out = n.substr(std::char_traits<char>::length("language_model."));
  else if (starts("model.language_model.")) *out = "model." + n.substr(std::char_traits<char>::length("model.language_model."));
  else *out = n;
  return true;
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

extern const ArchitectureSpec kGemma3Architecture = {Architecture::kGemma3, "gemma3",              {"gemma3_text", "gemma3"}, "Gemma3ForCausalLM",
                                                     parse_gemma3_config,   gemma3_canonical_name, llama_resolve_ties,
                                                     gemma3_write_config,   create_llama};

}  // namespace pocketllm
