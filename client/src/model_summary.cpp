#include "pocketllm/client/model_summary.h"

#include <map>

#include "pocketllm/common/dtype.h"
#include "pocketllm/common/utf8.h"

namespace pocketllm {

nlohmann::json model_summary(const LoadedModel& loaded) {
  const ModelConfig& c = loaded.model->config();
  const WeightStore& w = loaded.model->weights();
  std::map<std::string, size_t> by_dtype;
  for (const auto& t : w.all()) by_dtype[dtype_name(t->dtype)] += t->numel();
  // Names may come from a GGUF file's metadata, which is bytes: the JSON carries them as valid UTF-8.
  nlohmann::json j = {{"format", loaded.format},
                      {"name", to_valid_utf8(loaded.name)},
                      {"architecture", architecture_name(c.arch)},
                      {"hf_architecture", to_valid_utf8(c.hf_architecture)},
                      {"model_type", to_valid_utf8(c.model_type)},
                      {"layers", c.num_layers},
                      {"hidden_size", c.hidden_size},
                      {"intermediate_size", c.intermediate_size},
                      {"heads", c.num_heads},
                      {"kv_heads", c.num_kv_heads},
                      {"head_dim", c.head_dim},
                      {"vocab_size", c.vocab_size},
                      {"context_length", c.max_position_embeddings},
                      {"parameters", w.total_numel()},
                      {"tensors", w.all().size()},
                      {"dtypes", by_dtype},
                      {"weights_bytes", w.storage_bytes()},
                      {"tokenizer", loaded.tokenizer != nullptr},
                      {"eos_token_id", loaded.tokenizer ? loaded.tokenizer->eos_id() : c.eos_token_id},
                      {"adapter", nullptr}};
  if (loaded.adapter.enabled()) j["adapter"] = loaded.adapter.to_json();
  return j;
}

}  // namespace pocketllm
