#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "pocketllm/client/loader.h"
#include "pocketllm/common/file_util.h"

namespace pocketllm {

Status export_hf_directory(const LoadedModel& loaded, const std::string& out_dir) {
  const ModelConfig& c = loaded.model->config();
  if (::mkdir(out_dir.c_str(), 0755) != 0 && errno != EEXIST) return io_error(out_dir + ": cannot create: " + std::strerror(errno));
  std::vector<TensorToWrite> tensors;
  for (const auto& w : loaded.model->weights().all()) tensors.push_back({w->name, w->dtype, w->shape, w->data});
  POCKETLLM_RETURN_IF_ERROR(write_safetensors(out_dir + "/model.safetensors", tensors, {{"format", "pt"}}));
  nlohmann::json config;
  switch (c.arch) {
    case Architecture::kLlama:
      config = {{"architectures", {c.hf_architecture}}, {"model_type", c.model_type}, {"vocab_size", c.vocab_size},
                {"hidden_size", c.hidden_size}, {"intermediate_size", c.intermediate_size},
                {"num_hidden_layers", c.num_layers}, {"num_attention_heads", c.num_heads},
                {"num_key_value_heads", c.num_kv_heads}, {"head_dim", c.head_dim},
                {"max_position_embeddings", c.max_position_embeddings}, {"rms_norm_eps", c.norm_eps},
                {"rope_theta", c.rope_theta}, {"tie_word_embeddings", c.tie_word_embeddings}, {"hidden_act", "silu"}};
      if (c.attention_out_bias) config["attention_bias"] = true;
      if (c.rope_scaling.type == "llama3")
        config["rope_scaling"] = {{"rope_type", "llama3"},
                                  {"factor", c.rope_scaling.factor},
                                  {"low_freq_factor", c.rope_scaling.low_freq_factor},
                                  {"high_freq_factor", c.rope_scaling.high_freq_factor},
                                  {"original_max_position_embeddings", c.rope_scaling.original_max_position_embeddings}};
      break;
    case Architecture::kOpt:
      config = {{"architectures", {"OPTForCausalLM"}}, {"model_type", "opt"}, {"vocab_size", c.vocab_size},
                {"hidden_size", c.hidden_size}, {"ffn_dim", c.intermediate_size}, {"num_hidden_layers", c.num_layers},
                {"num_attention_heads", c.num_heads}, {"max_position_embeddings", c.max_position_embeddings},
                {"word_embed_proj_dim", c.word_embed_proj_dim > 0 ? c.word_embed_proj_dim : c.hidden_size},
                {"do_layer_norm_before", c.do_layer_norm_before}, {"activation_function", "relu"}};
      if (c.pad_token_id >= 0) config["pad_token_id"] = c.pad_token_id;
      break;
    case Architecture::kGpt2:
      config = {{"architectures", {"GPT2LMHeadModel"}}, {"model_type", "gpt2"}, {"vocab_size", c.vocab_size},
                {"n_embd", c.hidden_size}, {"n_layer", c.num_layers}, {"n_head", c.num_heads},
                {"n_positions", c.max_position_embeddings}, {"n_inner", c.intermediate_size},
                {"activation_function", "gelu_new"}, {"layer_norm_epsilon", c.norm_eps}};
      break;
    case Architecture::kRoberta:
      config = {{"architectures", {"RobertaForMaskedLM"}}, {"model_type", "roberta"}, {"vocab_size", c.vocab_size},
                {"hidden_size", c.hidden_size}, {"intermediate_size", c.intermediate_size},
                {"num_hidden_layers", c.num_layers}, {"num_attention_heads", c.num_heads},
                {"max_position_embeddings", c.max_position_embeddings}, {"type_vocab_size", c.type_vocab_size},
                {"layer_norm_eps", c.norm_eps}, {"hidden_act", "gelu"}, {"pad_token_id", c.pad_token_id}};
      break;
  }
  config["torch_dtype"] = "float32";
  if (c.bos_token_id >= 0) config["bos_token_id"] = c.bos_token_id;
  if (c.eos_token_id >= 0) config["eos_token_id"] = c.eos_token_id;
  POCKETLLM_RETURN_IF_ERROR(write_file_atomic(out_dir + "/config.json", config.dump(2) + "\n"));
  // Tokenizer: the file the model was loaded with, plus its Hugging Face companions.
  if (!loaded.tokenizer_path.empty()) {
    const std::string& tp = loaded.tokenizer_path;
    const size_t slash = tp.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : tp.substr(0, slash);
    const bool is_bin = tp.size() >= 4 && tp.compare(tp.size() - 4, 4, ".bin") == 0;
    std::vector<std::pair<std::string, std::string>> copies;
    if (is_bin) copies.emplace_back(tp, out_dir + "/tokenizer.bin");
    for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"})
      copies.emplace_back(dir + "/" + f, out_dir + "/" + f);
    for (const auto& [from, to] : copies) {
      auto bytes = read_file(from, size_t{1} << 30);
      if (!bytes) {
        if (bytes.status().code() == StatusCode::kNotFound) continue;
        return bytes.status();
      }
      POCKETLLM_RETURN_IF_ERROR(write_file_atomic(to, bytes.value()));
    }
  }
  return Status::ok();
}

}  // namespace pocketllm
