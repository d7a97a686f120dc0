// The architecture registry (internal). Each client/src/arch/<name>.cpp declares one ArchitectureSpec:
// the config.json model types it runs, how its config parses and writes back, the canonical
// (Hugging Face) names of its parameters, and its factory. The loader, the exporter and model creation
// read only the registry; adding an architecture is one new file plus its line in registry.cpp
// (docs/architecture.md has a worked example).
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "pocketllm/client/model.h"
#include "pocketllm/client/model_config.h"
#include "pocketllm/client/weights.h"

namespace pocketllm {

struct ArchitectureSpec {
  Architecture id;
  const char* name;                       // "llama", "opt", …: what `pocketllm info` prints
  std::vector<std::string> model_types;   // config.json "model_type" values it runs
  const char* hf_architecture;            // the class name when config.json has no "architectures"
  // config.json -> ModelConfig (`c` has arch, hf_architecture and model_type filled in); names the bad field.
  Result<ModelConfig> (*parse_config)(const nlohmann::json& j, ModelConfig c, const std::string& where);
  // A stored tensor name -> its canonical name; false when the tensor is not a parameter (a buffer, a
  // tied copy). Checkpoints of the base model class lack the task model's prefix.
  bool (*canonical_name)(const std::string& stored, std::string* canonical);
  // Settles config choices that depend on which tensors the checkpoint holds (a stored tied head).
  void (*resolve_ties)(ModelConfig* c, const WeightStore& weights);
  // ModelConfig -> config.json (export), without the fields common to every architecture.
  nlohmann::json (*write_config)(const ModelConfig& c);
  Result<std::unique_ptr<LanguageModel>> (*create)(ModelConfig config, WeightStore weights);
};

// The factory of an architecture whose model class has `Status init(ModelConfig, WeightStore)`.
template <class Model>
Result<std::unique_ptr<LanguageModel>> create_transformer(ModelConfig config, WeightStore weights) {
  auto m = std::make_unique<Model>();
  POCKETLLM_RETURN_IF_ERROR(m->init(std::move(config), std::move(weights)));
  return std::unique_ptr<LanguageModel>(std::move(m));
}

// Every registered architecture, in registry order.
const std::vector<const ArchitectureSpec*>& architectures();
// The architecture that runs config.json's `model_type`, or null.
const ArchitectureSpec* architecture_for_model_type(const std::string& model_type);
const ArchitectureSpec& architecture_spec(Architecture id);

// Helpers for parse_config functions.
namespace arch_config {
// Reads a number field; `required` missing -> corrupt, wrong type -> corrupt.
template <class T>
Status number(const nlohmann::json& j, const char* key, T* out, const std::string& where, bool required) {
  if (!j.contains(key) || j[key].is_null()) return required ? corrupt(where + ": missing \"" + key + "\"") : Status::ok();
  if (!j[key].is_number()) return corrupt(where + ": \"" + key + "\" is not a number");
  *out = j[key].get<T>();
  return Status::ok();
}
// One config.json number and the ModelConfig field it fills (an int or a float one).
struct Field {
  const char* key;
  int ModelConfig::*int_member;
  float ModelConfig::*float_member;
  bool required;
};
inline Field required(const char* key, int ModelConfig::*m) { return {key, m, nullptr, true}; }
inline Field optional(const char* key, int ModelConfig::*m) { return {key, m, nullptr, false}; }
inline Field optional(const char* key, float ModelConfig::*m) { return {key, nullptr, m, false}; }
// Reads every field in order; the first problem names its field.
Status read_fields(const nlohmann::json& j, ModelConfig* c, std::initializer_list<Field> fields, const std::string& where);
// What every multi-head config shares after its own fields: one KV head per head, head_dim, the
// special token ids (pad only when `with_pad`), positive sizes.
Status finish(const nlohmann::json& j, ModelConfig* c, const std::string& where, bool with_pad = true);
// bos/eos (and pad, when `with_pad`) token ids: a number or the first of a list.
void special_tokens(const nlohmann::json& j, ModelConfig* c, bool with_pad = true);
// Sizes positive and hidden_size a multiple of the head count.
Status check_sizes(const ModelConfig& c, const std::string& where);
}  // namespace arch_config

}  // namespace pocketllm
