// Hugging Face model directories: config.json, model.safetensors (or shards listed in
// model.safetensors.index.json), tokenizer.json (+ tokenizer_config.json). Weights are memory-mapped
// and used in place; nothing is copied at load.
#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <set>

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

}  // namespace

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
  if (!llama_like.count(c.model_type))
    return unsupported(where + ": model_type '" + c.model_type + "' (architecture '" + c.hf_architecture +
                       "') is not supported; supported: llama, qwen2, mistral");
  c.arch = Architecture::kLlama;
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

  WeightStore ws;
  std::set<std::string> seen;
  for (const auto& f : files) {
    auto st = SafetensorsFile::open(f);
    if (!st) return st.status();
    auto shared = std::make_shared<SafetensorsFile>(std::move(st.value()));
    for (const auto& t : shared->tensors()) {
      if (!seen.insert(t.name).second) return corrupt(f + ": tensor '" + t.name + "' also appears in another shard");
      ws.add_view(t.name, t.shape, t.dtype, shared->raw(t));
    }
    ws.keep(shared);
  }
  // Some checkpoints store the tied head explicitly; others omit it.
  ModelConfig c = config.value();
  if (!c.tie_word_embeddings && ws.find("lm_head.weight") == nullptr && ws.find("model.embed_tokens.weight") != nullptr)
    c.tie_word_embeddings = true;

  auto model = LlamaModel::create(c, std::move(ws));
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
