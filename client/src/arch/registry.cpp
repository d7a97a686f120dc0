#include "arch/architecture.h"

#include "pocketllm/client/architectures.h"

#include <algorithm>

namespace pocketllm {

extern const ArchitectureSpec kLlamaArchitecture;
extern const ArchitectureSpec kOptArchitecture;
extern const ArchitectureSpec kGpt2Architecture;
extern const ArchitectureSpec kRobertaArchitecture;
extern const ArchitectureSpec kGemma3Architecture;

const std::vector<const ArchitectureSpec*>& architectures() {
  static const std::vector<const ArchitectureSpec*> all = {&kLlamaArchitecture, &kOptArchitecture, &kGpt2Architecture,
                                                           &kRobertaArchitecture, &kGemma3Architecture};
  return all;
}

const ArchitectureSpec* architecture_for_model_type(const std::string& model_type) {
  for (const ArchitectureSpec* a : architectures())
    for (const std::string& t : a->model_types)
      if (t == model_type) return a;
  return nullptr;
}

const ArchitectureSpec& architecture_spec(Architecture id) {
  for (const ArchitectureSpec* a : architectures())
    if (a->id == id) return *a;
  return kLlamaArchitecture;  // every enum value is registered (tests/client/test_architectures.cpp)
}

const char* architecture_name(Architecture a) { return architecture_spec(a).name; }

Result<std::unique_ptr<LanguageModel>> create_model(ModelConfig config, WeightStore weights) {
  return architecture_spec(config.arch).create(std::move(config), std::move(weights));
}

namespace arch_config {

Status read_fields(const nlohmann::json& j, ModelConfig* c, std::initializer_list<Field> fields, const std::string& where) {
  for (const Field& f : fields) {
    if (f.int_member) POCKETLLM_RETURN_IF_ERROR(number(j, f.key, &(c->*f.int_member), where, f.required));
    else POCKETLLM_RETURN_IF_ERROR(number(j, f.key, &(c->*f.float_member), where, f.required));
  }
  return Status::ok();
}

Status finish(const nlohmann::json& j, ModelConfig* c, const std::string& where, bool with_pad) {
  c->num_kv_heads = c->num_heads;
  c->head_dim = c->hidden_size / std::max(1, c->num_heads);
  special_tokens(j, c, with_pad);
  return check_sizes(*c, where);
}

void special_tokens(const nlohmann::json& j, ModelConfig* c, bool with_pad) {
  auto first_id = [](const nlohmann::json& v) {
    if (v.is_number_integer()) return v.get<int>();
    if (v.is_array() && !v.empty() && v[0].is_number_integer()) return v[0].get<int>();
    return -1;
  };
  if (j.contains("bos_token_id")) c->bos_token_id = first_id(j["bos_token_id"]);
  if (j.contains("eos_token_id")) c->eos_token_id = first_id(j["eos_token_id"]);
  if (with_pad && j.contains("pad_token_id")) c->pad_token_id = first_id(j["pad_token_id"]);
}

Status check_sizes(const ModelConfig& c, const std::string& where) {
  if (c.vocab_size <= 0 || c.hidden_size <= 0 || c.intermediate_size <= 0 || c.num_layers <= 0 || c.num_heads <= 0 ||
      c.hidden_size % c.num_heads != 0 || c.max_position_embeddings <= 0)
    return corrupt(where + ": sizes must be positive and hidden_size a multiple of the head count");
  return Status::ok();
}

}  // namespace arch_config
}  // namespace pocketllm
