// Hugging Face model directories: config.json, model.safetensors (or shards listed in
// model.safetensors.index.json), tokenizer.json (+ tokenizer_config.json). Weights are memory-mapped
// and used in place; nothing is copied at load.
#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <set>

#include "pocketllm/client/architectures.h"
#include "pocketllm/client/llama.h"
#include "pocketllm/client/loader.h"
#include "pocketllm/common/file_util.h"

namespace pocketllm {
namespace {

using nlohmann::json;

bool is_file(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
bool is_dir(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

template <class T>
Status get_number(const json& j, const char* key, T* out, const std::string& where, bool required) {
  if (!j.contains(key) || j[key].is_null()) {
    if (required) return corrupt(where + ": missing \"" + key + "\"");
    return Status::ok();
  }
  if (!j[key].is_number()) return corrupt(where + ": \"" + key + "\" is not a number");
  *out = j[key].get<T>();
  return Status::ok();
}

int first_id(const json& v) {
  if (v.is_number_integer()) return v.get<int>();
  if (v.is_array() && !v.empty() && v[0].is_number_integer()) return v[0].get<int>();
  return -1;
}

Status check_positive(const ModelConfig& c, const std::string& where) {
  if (c.vocab_size <= 0 || c.hidden_size <= 0 || c.intermediate_size <= 0 || c.num_layers <= 0 || c.num_heads <= 0 ||
      c.hidden_size % c.num_heads != 0 || c.max_position_embeddings <= 0)
    return corrupt(where + ": sizes must be positive and hidden_size a multiple of the head count");
  return Status::ok();
}

Result<ModelConfig> parse_gpt2_config(const json& j, ModelConfig c, const std::string& where) {
  c.arch = Architecture::kGpt2;
  if (c.hf_architecture.empty()) c.hf_architecture = "GPT2LMHeadModel";
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "vocab_size", &c.vocab_size, where, true));
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "n_embd", &c.hidden_size, where, true));
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "n_layer", &c.num_layers, where, true));
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "n_head", &c.num_heads, where, true));
  c.max_position_embeddings = 1024;
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "n_positions", &c.max_position_embeddings, where, false));
  c.intermediate_size = 4 * c.hidden_size;
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "n_inner", &c.intermediate_size, where, false));
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "layer_norm_epsilon", &c.norm_eps, where, false));
  c.activation = j.value("activation_function", "gelu_new");
  if (c.activation != "gelu_new" && c.activation != "gelu_pytorch_tanh")
    return unsupported(where + ": GPT-2 activation '" + c.activation + "' (supported: gelu_new)");
  if (j.value("scale_attn_by_inverse_layer_idx", false) || j.value("reorder_and_upcast_attn", false))
    return unsupported(where + ": GPT-2 attention variants (scale_attn_by_inverse_layer_idx, reorder_and_upcast_attn)");
  c.num_kv_heads = c.num_heads;
  c.head_dim = c.hidden_size / std::max(1, c.num_heads);
  c.tie_word_embeddings = true;
  if (j.contains("bos_token_id")) c.bos_token_id = first_id(j["bos_token_id"]);
  if (j.contains("eos_token_id")) c.eos_token_id = first_id(j["eos_token_id"]);
  POCKETLLM_RETURN_IF_ERROR(check_positive(c, where));
  return c;
}

Result<ModelConfig> parse_opt_config(const json& j, ModelConfig c, const std::string& where) {
  c.arch = Architecture::kOpt;
  if (c.hf_architecture.empty()) c.hf_architecture = "OPTForCausalLM";
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "vocab_size", &c.vocab_size, where, true));
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "hidden_size", &c.hidden_size, where, true));
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "ffn_dim", &c.intermediate_size, where, true));
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "num_hidden_layers", &c.num_layers, where, true));
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "num_attention_heads", &c.num_heads, where, true));
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "max_position_embeddings", &c.max_position_embeddings, where, true));
  c.word_embed_proj_dim = c.hidden_size;
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "word_embed_proj_dim", &c.word_embed_proj_dim, where, false));
  c.do_layer_norm_before = j.value("do_layer_norm_before", true);
  c.activation = j.value("activation_function", "relu");
  if (c.activation != "relu") return unsupported(where + ": OPT activation '" + c.activation + "' (supported: relu)");
  if (!j.value("enable_bias", true) || !j.value("layer_norm_elementwise_affine", true))
    return unsupported(where + ": OPT without biases or affine layer norms");
  c.norm_eps = 1e-5f;
  c.position_offset = 2;
  c.num_kv_heads = c.num_heads;
  c.head_dim = c.hidden_size / std::max(1, c.num_heads);
  c.tie_word_embeddings = j.value("tie_word_embeddings", true);
  if (j.contains("bos_token_id")) c.bos_token_id = first_id(j["bos_token_id"]);
  if (j.contains("eos_token_id")) c.eos_token_id = first_id(j["eos_token_id"]);
  if (j.contains("pad_token_id")) c.pad_token_id = first_id(j["pad_token_id"]);
  POCKETLLM_RETURN_IF_ERROR(check_positive(c, where));
  return c;
}

Result<ModelConfig> parse_roberta_config(const json& j, ModelConfig c, const std::string& where) {
  c.arch = Architecture::kRoberta;
  if (c.hf_architecture.empty()) c.hf_architecture = "RobertaForMaskedLM";
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "vocab_size", &c.vocab_size, where, true));
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "hidden_size", &c.hidden_size, where, true));
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "intermediate_size", &c.intermediate_size, where, true));
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "num_hidden_layers", &c.num_layers, where, true));
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "num_attention_heads", &c.num_heads, where, true));
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "max_position_embeddings", &c.max_position_embeddings, where, true));
  c.type_vocab_size = 1;
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "type_vocab_size", &c.type_vocab_size, where, false));
  c.norm_eps = 1e-5f;
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "layer_norm_eps", &c.norm_eps, where, false));
  c.activation = j.value("hidden_act", "gelu");
  if (c.activation != "gelu") return unsupported(where + ": RoBERTa activation '" + c.activation + "' (supported: gelu)");
  c.pad_token_id = 1;
  if (j.contains("pad_token_id")) c.pad_token_id = first_id(j["pad_token_id"]);
  c.position_offset = c.pad_token_id + 1;
  c.num_kv_heads = c.num_heads;
  c.head_dim = c.hidden_size / std::max(1, c.num_heads);
  c.tie_word_embeddings = true;
  if (j.contains("bos_token_id")) c.bos_token_id = first_id(j["bos_token_id"]);
  if (j.contains("eos_token_id")) c.eos_token_id = first_id(j["eos_token_id"]);
  POCKETLLM_RETURN_IF_ERROR(check_positive(c, where));
  if (c.type_vocab_size < 1) return corrupt(where + ": type_vocab_size must be at least 1");
  return c;
}

// Canonical names: the task model's state_dict names. Checkpoints saved from the base model class
// lack the prefix ("h.0…" for GPT-2, "decoder.…" for OPT, "encoder.…" for RoBERTa); buffers that are
// not parameters (GPT-2 attention masks, position_ids) are dropped.
bool canonical_name(const ModelConfig& c, const TensorInfo& t, std::string* out) {
  const std::string& n = t.name;
  auto ends_with = [&](const char* s) {
    const std::string e(s);
    return n.size() >= e.size() && n.compare(n.size() - e.size(), e.size(), e) == 0;
  };
  if (!dtype_is_float_weights(t.dtype) || ends_with("position_ids")) return false;
  switch (c.arch) {
    case Architecture::kGpt2:
      if (ends_with(".attn.bias") || ends_with(".attn.masked_bias")) return false;
      *out = (n.rfind("transformer.", 0) == 0 || n.rfind("lm_head.", 0) == 0) ? n : "transformer." + n;
      return true;
    case Architecture::kOpt:
      *out = n.rfind("decoder.", 0) == 0 ? "model." + n : n;
      return true;
    case Architecture::kRoberta:
      *out = (n.rfind("embeddings.", 0) == 0 || n.rfind("encoder.", 0) == 0) ? "roberta." + n : n;
      if (*out == "lm_head.decoder.bias") return false;  // the same parameter as lm_head.bias
      if (*out == "lm_head.decoder.weight") return false;  // tied to the word embeddings
      return true;
    default:
      *out = n;
      return true;
  }
}

}  // namespace

Result<std::unique_ptr<LanguageModel>> create_model(ModelConfig config, WeightStore weights) {
  switch (config.arch) {
    case Architecture::kLlama: {
      auto m = LlamaModel::create(std::move(config), std::move(weights));
      if (!m) return m.status();
      return std::unique_ptr<LanguageModel>(std::move(m.value()));
    }
    case Architecture::kOpt: return create_opt(std::move(config), std::move(weights));
    case Architecture::kGpt2: return create_gpt2(std::move(config), std::move(weights));
    case Architecture::kRoberta: return create_roberta(std::move(config), std::move(weights));
  }
  return unsupported("unknown architecture");
}

const char* architecture_name(Architecture a) {
  switch (a) {
    case Architecture::kLlama: return "llama";
    case Architecture::kOpt: return "opt";
    case Architecture::kGpt2: return "gpt2";
    case Architecture::kRoberta: return "roberta";
  }
  return "?";
}

Result<ModelConfig> parse_hf_config(const std::string& text, const std::string& where) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return corrupt(where + ": not a JSON object");
  ModelConfig c;
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
      j["architectures"][0].is_string())
    c.hf_architecture = j["architectures"][0].get<std::string>();
  if (j.contains("model_type") && j["model_type"].is_string()) c.model_type = j["model_type"].get<std::string>();
  static const std::set<std::string> llama_like = {"llama", "qwen2", "mistral"};
  if (c.model_type == "gpt2") return parse_gpt2_config(j, c, where);
  if (c.model_type == "opt") return parse_opt_config(j, c, where);
  if (c.model_type == "roberta") return parse_roberta_config(j, c, where);
  if (!llama_like.count(c.model_type))
    return unsupported(where + ": model_type '" + c.model_type + "' (architecture '" + c.hf_architecture +
                       "') is not supported; supported: llama, qwen2, mistral, opt, gpt2, roberta");
  c.arch = Architecture::kLlama;
  c.activation = "silu";
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "vocab_size", &c.vocab_size, where, true));
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "hidden_size", &c.hidden_size, where, true));
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "intermediate_size", &c.intermediate_size, where, true));
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "num_hidden_layers", &c.num_layers, where, true));
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "num_attention_heads", &c.num_heads, where, true));
  c.num_kv_heads = c.num_heads;
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "num_key_value_heads", &c.num_kv_heads, where, false));
  if (c.num_heads <= 0 || c.hidden_size <= 0) return corrupt(where + ": hidden_size and num_attention_heads must be positive");
  c.head_dim = c.hidden_size / c.num_heads;
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "head_dim", &c.head_dim, where, false));
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "max_position_embeddings", &c.max_position_embeddings, where, false));
  c.norm_eps = 1e-6f;
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "rms_norm_eps", &c.norm_eps, where, false));
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "rope_theta", &c.rope_theta, where, false));
  if (j.contains("tie_word_embeddings") && j["tie_word_embeddings"].is_boolean())
    c.tie_word_embeddings = j["tie_word_embeddings"].get<bool>();
  if (c.model_type == "qwen2") c.attention_qkv_bias = true;
  if (j.contains("attention_bias") && j["attention_bias"].is_boolean() && j["attention_bias"].get<bool>()) {
    c.attention_qkv_bias = true;
    c.attention_out_bias = true;
  }
  if (j.contains("mlp_bias") && j["mlp_bias"].is_boolean() && j["mlp_bias"].get<bool>())
    return unsupported(where + ": mlp_bias = true is not supported");
  if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) {
    const json& r = j["rope_scaling"];
    std::string type = r.value("rope_type", r.value("type", std::string()));
    c.rope_scaling.type = type;
    if (type == "llama3") {
      c.rope_scaling.factor = r.value("factor", 1.0f);
      c.rope_scaling.low_freq_factor = r.value("low_freq_factor", 1.0f);
      c.rope_scaling.high_freq_factor = r.value("high_freq_factor", 4.0f);
      c.rope_scaling.original_max_position_embeddings = r.value("original_max_position_embeddings", 8192);
    } else if (type != "default") {
      return unsupported(where + ": rope_scaling type '" + type + "' is not supported (supported: llama3)");
    }
  }
  if (j.contains("bos_token_id")) c.bos_token_id = first_id(j["bos_token_id"]);
  if (j.contains("eos_token_id")) c.eos_token_id = first_id(j["eos_token_id"]);
  if (j.contains("pad_token_id")) c.pad_token_id = first_id(j["pad_token_id"]);
  return c;
}

// long: config, shards, canonical names, tie rules and tokenizer in load order; to be split by the architecture registry.
Result<LoadedModel> load_hf_directory(const std::string& dir, const LoadOptions& options) {
  const std::string config_path = dir + "/config.json";
  auto config_text = read_file(config_path, size_t{1} << 24);
  if (!config_text) return config_text.status();
  auto config = parse_hf_config(config_text.value(), config_path);
  if (!config) return config.status();

  // The safetensors files: one, or the shards named by the index.
  std::vector<std::string> files;
  const std::string index_path = dir + "/model.safetensors.index.json";
  if (is_file(dir + "/model.safetensors")) {
    files.push_back(dir + "/model.safetensors");
  } else if (is_file(index_path)) {
    auto idx_text = read_file(index_path, size_t{1} << 26);
    if (!idx_text) return idx_text.status();
    json idx = json::parse(idx_text.value(), nullptr, false);
    if (idx.is_discarded() || !idx.contains("weight_map") || !idx["weight_map"].is_object())
      return corrupt(index_path + ": no \"weight_map\" object");
    std::set<std::string> shard_names;
    for (auto it = idx["weight_map"].begin(); it != idx["weight_map"].end(); ++it) {
      if (!it.value().is_string()) return corrupt(index_path + ": weight_map entry '" + it.key() + "' is not a file name");
      const std::string f = it.value().get<std::string>();
      if (f.find('/') != std::string::npos || f.find("..") != std::string::npos)
        return corrupt(index_path + ": shard name '" + f + "' must be a plain file name");
      shard_names.insert(f);
    }
    for (const auto& f : shard_names) files.push_back(dir + "/" + f);
  } else {
    return not_found(dir + ": no model.safetensors or model.safetensors.index.json (pytorch_model.bin is not supported; "
                     "convert it to safetensors)");
  }

  const ModelConfig& cfg = config.value();
  WeightStore ws;
  std::set<std::string> seen;
  for (const auto& f : files) {
    auto st = SafetensorsFile::open(f);
    if (!st) return st.status();
    auto shared = std::make_shared<SafetensorsFile>(std::move(st.value()));
    for (const auto& t : shared->tensors()) {
      std::string name;
      if (!canonical_name(cfg, t, &name)) continue;
      if (!seen.insert(name).second) return corrupt(f + ": tensor '" + name + "' appears twice");
      ws.add_view(name, t.shape, t.dtype, shared->raw(t));
    }
    ws.keep(shared);
  }
  // Some checkpoints store the tied head explicitly; others omit it.
  ModelConfig c = config.value();
  if (c.arch == Architecture::kLlama && !c.tie_word_embeddings && ws.find("lm_head.weight") == nullptr &&
      ws.find("model.embed_tokens.weight") != nullptr)
    c.tie_word_embeddings = true;
  if (c.arch == Architecture::kOpt && ws.find("lm_head.weight") != nullptr) {
    // A stored copy of the tied head: keep one canonical tensor.
    c.tie_word_embeddings = true;
  }

  auto model = create_model(c, std::move(ws));
  if (!model) return Status(model.status().code(), dir + ": " + model.status().message());
  LoadedModel out;
  out.model = std::move(model.value());
  out.format = "huggingface";
  out.path = dir;
  std::string tok = options.tokenizer_path;
  if (tok.empty() && is_file(dir + "/tokenizer.bin")) tok = dir + "/tokenizer.bin";
  if (tok.empty() && is_file(dir + "/tokenizer.json")) tok = dir + "/tokenizer.json";
  if (!tok.empty() && tok.size() >= 4 && tok.compare(tok.size() - 4, 4, ".bin") == 0) {
    auto t = load_llama2c_tokenizer(tok, c.vocab_size);
    if (!t) return t.status();
    out.tokenizer = std::move(t.value());
    out.tokenizer_path = tok;
  } else if (!tok.empty()) {
    const size_t slash = tok.find_last_of('/');
    const std::string tdir = slash == std::string::npos ? "." : tok.substr(0, slash);
    auto t = load_hf_tokenizer(tok, is_file(tdir + "/tokenizer_config.json") ? tdir + "/tokenizer_config.json" : "");
    if (!t) return t.status();
    if (t.value()->vocab_size() > c.vocab_size)
      return mismatch(tok + ": the tokenizer has " + std::to_string(t.value()->vocab_size()) +
                      " tokens but the model's vocabulary is " + std::to_string(c.vocab_size));
    out.tokenizer = std::move(t.value());
    out.tokenizer_path = tok;
  } else if (options.require_tokenizer) {
    return not_found(dir + ": no supported tokenizer found");
  }
  return out;
}

Result<LoadedModel> load_model(const std::string& path, const LoadOptions& options) {
  if (is_dir(path)) {
    if (is_file(path + "/config.json")) return load_hf_directory(path, options);
    // A llama2.c model folder (e.g. tinyllamas/stories260K): the one checkpoint .bin that is not a tokenizer.
    for (const std::string name : {"model.bin", "stories260K.bin", "stories15M.bin", "stories42M.bin", "stories110M.bin"})
      if (is_file(path + "/" + name)) return load_llama2c(path + "/" + name, options);
    return not_found(path + ": neither a Hugging Face model directory (config.json) nor a llama2.c model folder");
  }
  if (!is_file(path)) return not_found(path + ": no such file or directory");
  if (path.size() >= 4 && path.compare(path.size() - 4, 4, ".bin") == 0) return load_llama2c(path, options);
  return unsupported(path + ": unknown model format (expected a Hugging Face directory or a llama2.c .bin)");
}

}  // namespace pocketllm
