// Loading a model from disk into canonical Hugging Face tensors: a Hugging Face directory
// (config.json + model.safetensors or sharded safetensors with an index, + tokenizer.json), a
// llama2.c checkpoint (.bin, legacy version 0) with its tokenizer.bin, or a GGUF file (.gguf, with the
// tokenizer inside; quantized weights stay quantized).
#pragma once

#include <memory>
#include <string>

#include "pocketllm/client/lora.h"
#include "pocketllm/client/model.h"
#include "pocketllm/client/tokenizer.h"

namespace pocketllm {

struct LoadOptions {
  std::string tokenizer_path;  // override; default: found beside the model
  bool require_tokenizer = false;
  std::string adapter_path;  // a PEFT LoRA adapter directory applied on top of the model (lora.h)
  // kF32: as stored. kQ8_0 / kQ4_0: every matrix whose rows are whole 32-element blocks is quantized in
  // memory at load (ggml's reference quantizers), its source pages released: an 8- or 4-bit model from
  // any F32/F16/BF16 checkpoint, for architectures GGUF does not carry (OPT, GPT-2, RoBERTa).
  DType quantize = DType::kF32;

  // A loader that requires the tokenizer (found beside the model, or at `tokenizer`).
  static LoadOptions with_tokenizer(std::string tokenizer = "") {
    LoadOptions o;
    o.tokenizer_path = std::move(tokenizer);
    o.require_tokenizer = true;
    return o;
  }
};

struct LoadedModel {
  std::unique_ptr<LanguageModel> model;
  std::unique_ptr<Tokenizer> tokenizer;  // null when none was found and none was required
  std::string format;                    // "huggingface", "llama2.c" or "gguf"
  std::string path;
  std::string name;                      // GGUF general.name; else the file or folder name
  std::string tokenizer_path;            // the file the tokenizer was read from
  LoraConfig adapter;                    // the adapter loaded with LoadOptions::adapter_path (rank 0: none)
};

// Writes `model` as a Hugging Face directory: model.safetensors (trainable tensors as F32, others in
// their stored dtype), config.json, and the tokenizer file(s) copied from `tokenizer_path`'s folder.
Status export_hf_directory(const LoadedModel& model, const std::string& out_dir);

// GGUF export (docs/gguf.md): 2-D weights as `type` (F32, F16, BF16, Q8_0 or Q4_0; a matrix whose rows
// are not whole blocks of a quantized type is written as F16), 1-D tensors as F32, the tokenizer and
// the metadata llama.cpp reads. Trainable (fine-tuned) weights are written with their current values.
struct GgufExportOptions {
  DType type = DType::kF32;
  std::string name;  // general.name; default: the source file's name
};
// export_gguf reports each tensor written to the caller's ProgressScope (common/work_progress.h): a 7B
// model takes minutes.
Status export_gguf(const LoadedModel& model, const std::string& out_path, const GgufExportOptions& options = {});

Result<LoadedModel> load_model(const std::string& path, const LoadOptions& options = {});
// The in-memory quantization of LoadOptions::quantize (frozen, not yet quantized 2-D weights whose rows
// are whole blocks; GPT-2's Conv1D matrices excepted). Returns the number quantized.
Result<size_t> quantize_frozen_weights(LanguageModel& model, DType to);
// The llama2.c checkpoint of a model folder without config.json, or "" when it holds none.
std::string find_llama2c_checkpoint(const std::string& dir);

// The pieces, for tests and tools.
Result<LoadedModel> load_llama2c(const std::string& checkpoint, const LoadOptions& options);
Result<LoadedModel> load_hf_directory(const std::string& dir, const LoadOptions& options);
Result<LoadedModel> load_gguf(const std::string& path, const LoadOptions& options);
// A GGUF file's hyper-parameters (reads the header and metadata only).
Result<ModelConfig> gguf_model_config(const std::string& path);
Result<ModelConfig> parse_hf_config(const std::string& json_text, const std::string& display_name);

}  // namespace pocketllm
