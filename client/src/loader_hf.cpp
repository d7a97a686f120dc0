// Hugging Face model directories: config.json, model.safetensors (or shards listed in
// model.safetensors.index.json), tokenizer.json (+ tokenizer_config.json). Weights are memory-mapped
// and used in place; nothing is copied at load.
#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <set>

#include "arch/architecture.h"

#include "pocketllm/common/cancel.h"
#include "pocketllm/client/architectures.h"
#include "pocketllm/common/json_util.h"
#include "pocketllm/client/loader.h"
#include "pocketllm/client/lora.h"
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

// Canonical names: the task model's state_dict names (the architecture's rule); tensors that are not
// float weights, and position_ids buffers, are dropped.
bool canonical_name(const ArchitectureSpec& arch, const TensorInfo& t, std::string* out) {
  const std::string& n = t.name;
  const std::string suffix = "position_ids";
  if (!dtype_is_float_weights(t.dtype) || (n.size() >= suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0))
    return false;
  return arch.canonical_name(n, out);
}

}  // namespace

Result<ModelConfig> parse_hf_config(const std::string& text, const std::string& where) {
  json j = parse_json(text);
  if (j.is_discarded() || !j.is_object()) return corrupt(where + ": not a JSON object");
  ModelConfig c;
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
      j["architectures"][0].is_string())
    c.hf_architecture = j["architectures"][0].get<std::string>();
  if (j.contains("model_type") && j["model_type"].is_string()) c.model_type = j["model_type"].get<std::string>();
  const ArchitectureSpec* arch = architecture_for_model_type(c.model_type);
  if (!arch) {
    std::string supported;
    for (const ArchitectureSpec* a : architectures())
      for (const std::string& t : a->model_types) supported += (supported.empty() ? "" : ", ") + t;
    return unsupported(where + ": model_type '" + c.model_type + "' (architecture '" + c.hf_architecture +
                       "') is not supported; supported: " + supported);
  }
  c.arch = arch->id;
  if (c.hf_architecture.empty()) c.hf_architecture = arch->hf_architecture;
  return arch->parse_config(j, c, where);
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
    json idx = parse_json(idx_text.value());
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

  const ArchitectureSpec& arch = architecture_spec(config->arch);
  WeightStore ws;
  std::set<std::string> seen;
  for (const auto& f : files) {
    auto st = SafetensorsFile::open(f);
    if (!st) return st.status();
    auto shared = std::make_shared<SafetensorsFile>(std::move(st.value()));
    for (const auto& t : shared->tensors()) {
      throw_if_cancelled();
      std::string name;
      if (!canonical_name(arch, t, &name)) continue;
      if (!seen.insert(name).second) return corrupt(f + ": tensor '" + name + "' appears twice");
      ws.add_view(name, t.shape, t.dtype, shared->raw(t));
    }
    ws.keep(shared);
  }
  ModelConfig c = config.value();
  if (arch.resolve_ties) arch.resolve_ties(&c, ws);
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

std::string find_llama2c_checkpoint(const std::string& dir) {
  // A llama2.c model folder (e.g. tinyllamas/stories260K): the one checkpoint .bin that is not a tokenizer.
  for (const std::string name : {"model.bin", "stories260K.bin", "stories15M.bin", "stories42M.bin", "stories110M.bin"})
    if (is_file(dir + "/" + name)) return dir + "/" + name;
  return "";
}

namespace {

Result<LoadedModel> load_base_model(const std::string& path, const LoadOptions& options) {
  if (is_dir(path)) {
    if (is_file(path + "/config.json")) return load_hf_directory(path, options);
    if (const std::string bin = find_llama2c_checkpoint(path); !bin.empty()) return load_llama2c(bin, options);
    return not_found(path + ": neither a Hugging Face model directory (config.json) nor a llama2.c model folder");
  }
  if (!is_file(path)) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) return unsupported(path + ": not a regular file or directory (a model is a file or a folder)");
    return not_found(path + ": no such file or directory");
  }
  if (path.size() >= 4 && path.compare(path.size() - 4, 4, ".bin") == 0) return load_llama2c(path, options);
  if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".gguf") == 0) return load_gguf(path, options);
  return unsupported(path + ": unknown model format (expected a Hugging Face directory, a llama2.c .bin or a .gguf file)");
}

}  // namespace

Result<LoadedModel> load_model(const std::string& path, const LoadOptions& options) {
  auto loaded = load_base_model(path, options);
  if (!loaded) return loaded;
  if (options.quantize != DType::kF32) {
    auto q = quantize_frozen_weights(*loaded->model, options.quantize);
    if (!q) return q.status();
  }
  if (options.adapter_path.empty()) return loaded;
  auto lora = load_peft_adapter(*loaded->model, options.adapter_path);
  if (!lora) return lora.status();
  loaded->adapter = lora.value();
  return loaded;
}

}  // namespace pocketllm
