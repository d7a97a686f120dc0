#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "arch/architecture.h"
#include "pocketllm/client/loader.h"
#include "pocketllm/client/lora.h"
#include "pocketllm/common/file_util.h"

namespace pocketllm {
namespace {

// A Hugging Face Llama has output biases on all four attention projections (attention_bias) and on all
// three MLP projections (mlp_bias), or on none. Added biases (client/added_biases.h) may sit on some of them:
// the group they belong to is completed with zero biases — the same function — and its flag set.
Status complete_bias_groups(const LanguageModel& model, ModelConfig* out, std::vector<std::vector<float>>* zeros,
                            std::vector<TensorToWrite>* tensors) {
  const WeightStore& ws = model.weights();
  bool any = false;
  for (const auto& w : ws.all()) any = any || w->added_bias != nullptr;
  if (!any) return Status::ok();
  if (out->arch != Architecture::kLlama) return unsupported("added biases are exported for Llama-family models only");
  const std::vector<std::vector<std::string>> groups = {{"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"},
                                                        {"mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"}};
  for (size_t g = 0; g < groups.size(); ++g) {
    bool used = false;
    for (int l = 0; l < out->num_layers; ++l)
      for (const auto& m : groups[g]) used = used || ws.find("model.layers." + std::to_string(l) + "." + m + ".bias") != nullptr;
    if (!used) continue;
    for (int l = 0; l < out->num_layers; ++l)
      for (const auto& m : groups[g]) {
        const std::string base = "model.layers." + std::to_string(l) + "." + m;
        if (ws.find(base + ".bias") != nullptr) continue;
        const Weight* w = ws.find(base + ".weight");
        if (w == nullptr) return corrupt("export: " + base + ".weight is missing");
        zeros->emplace_back(w->rows(), 0.0f);
        tensors->push_back({base + ".bias", DType::kF32, {static_cast<int64_t>(w->rows())}, zeros->back().data()});
      }
    if (g == 0) out->attention_qkv_bias = out->attention_out_bias = true;
    else out->mlp_bias = true;
  }
  return Status::ok();
}

}  // namespace

Status export_hf_directory(const LoadedModel& loaded, const std::string& out_dir) {
  ModelConfig c = loaded.model->config();
  if (::mkdir(out_dir.c_str(), 0755) != 0 && errno != EEXIST) return io_error(out_dir + ": cannot create: " + std::strerror(errno));
  std::vector<TensorToWrite> tensors;
  std::vector<std::vector<float>> dequantized;  // safetensors holds no block-quantized type: those go out as F32
  dequantized.reserve(loaded.model->weights().all().size() + 7 * static_cast<size_t>(c.num_layers));
  const bool in_out = c.arch == Architecture::kGpt2;
  for (const auto& w : loaded.model->weights().all()) {
    if (w->adapter) continue;  // merged into its base weight below
    if (w->lora_a != nullptr) {
      dequantized.push_back(merged_weight(*w, in_out));
      tensors.push_back({w->name, DType::kF32, w->shape, dequantized.back().data()});
      continue;
    }
    if (!dtype_is_quantized(w->dtype)) {
      tensors.push_back({w->name, w->dtype, w->shape, w->data});
      continue;
    }
    dequantized.emplace_back(w->numel());
    convert_to_f32(w->dtype, w->data, w->numel(), dequantized.back().data());
    tensors.push_back({w->name, DType::kF32, w->shape, dequantized.back().data()});
  }
  POCKETLLM_RETURN_IF_ERROR(complete_bias_groups(*loaded.model, &c, &dequantized, &tensors));
  POCKETLLM_RETURN_IF_ERROR(write_safetensors(out_dir + "/model.safetensors", tensors, {{"format", "pt"}}));
  nlohmann::json config = architecture_spec(c.arch).write_config(c);
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
    const bool is_gguf = tp.size() >= 5 && tp.compare(tp.size() - 5, 5, ".gguf") == 0;
    if (is_gguf && loaded.tokenizer && loaded.tokenizer->spm_vocab())  // the vocabulary as llama2.c's tokenizer.bin
      return write_file_atomic(out_dir + "/tokenizer.bin", encode_llama2c_tokenizer(*loaded.tokenizer->spm_vocab()));
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
