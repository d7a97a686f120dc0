#include "pocketllm/client/memory_estimate.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "pocketllm/client/loader.h"
#include "pocketllm/common/dtype.h"
#include "pocketllm/common/file_util.h"

namespace pocketllm {

std::string MemoryEstimate::describe() const {
  char b[200];
  const double mib = 1 << 20;
  std::snprintf(b, sizeof b, "about %.1f MiB: %.1f MiB weights + %.1f MiB trainable float32 copies + %.1f MiB activations",
                static_cast<double>(total()) / mib, static_cast<double>(weights) / mib, static_cast<double>(trainable_f32) / mib,
                static_cast<double>(activations) / mib);
  std::string s = b;
  if (twin_activations > 0) {
    std::snprintf(b, sizeof b, " + %.1f MiB for the second forward pass at once", static_cast<double>(twin_activations) / mib);
    s += b;
  }
  return s;
}

MemoryEstimate estimate_training_memory(const LanguageModel& model, const NamePatterns& trainable, int batch, int seq_len,
                                        bool concurrent_pair) {
  MemoryEstimate e;
  const WeightStore& w = model.weights();
  e.weights = w.storage_bytes();
  for (const auto& weight : w.all())
    if (weight->dtype != DType::kF32 && (weight->trainable || trainable.matches(weight->name))) e.trainable_f32 += 4ull * weight->numel();
  e.activations = estimate_activation_bytes(model.config(), batch, seq_len);
  if (concurrent_pair) e.twin_activations = e.activations;
  return e;
}

uint64_t estimate_activation_bytes(const ModelConfig& c, int batch, int seq_len) {
  const double tokens = static_cast<double>(batch) * seq_len;
  // Per token: residual stream, normalised input, q/k/v, attention output, the MLP's two hidden
  // vectors; per sequence: one head's score matrix; per token of the streamed loss: one row of logits.
  const double per_token = 4.0 * c.hidden_size + 2.0 * c.num_heads * c.head_dim + 2.0 * c.num_kv_heads * c.head_dim +
                           2.0 * c.intermediate_size + static_cast<double>(c.vocab_size);
  const double scores = static_cast<double>(batch) * seq_len * seq_len;
  return static_cast<uint64_t>((tokens * per_token + scores) * 4.0 * 1.25);  // 25 % for scratch and alignment
}

uint64_t estimate_pass_working_set(const ModelConfig& c, int batch, int seq_len) {
  const double tokens = static_cast<double>(batch) * seq_len;
  const double d = c.hidden_size, qd = static_cast<double>(c.num_heads) * c.head_dim,
               kvd = static_cast<double>(c.num_kv_heads) * c.head_dim, ff = c.intermediate_size;
  // x, xn, projection output, hidden, gathered (5 d); q and attention output; k and v; MLP hidden and
  // the packed input of the down projection (2 ff).
  return static_cast<uint64_t>(tokens * (5 * d + 2 * qd + 2 * kvd + 2 * ff) * 4.0);
}

namespace {

uint64_t parameter_count(const ModelConfig& c) {
  const uint64_t d = static_cast<uint64_t>(c.hidden_size), ff = static_cast<uint64_t>(c.intermediate_size),
                 qd = static_cast<uint64_t>(c.num_heads) * c.head_dim, kvd = static_cast<uint64_t>(c.num_kv_heads) * c.head_dim,
                 v = static_cast<uint64_t>(c.vocab_size);
  return v * d * (c.tie_word_embeddings ? 1 : 2) + static_cast<uint64_t>(c.num_layers) * (2 * qd * d + 2 * kvd * d + 3 * d * ff);
}

// A llama2.c checkpoint: its 28-byte header gives the shape; the file is the float32 weights, plus the
// q/k projections the loader permutes into owned memory.
Result<MemoryEstimate> estimate_llama2c(const std::string& path, uint64_t file_size, int batch, int seq_len) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return io_error(path + ": cannot open: " + std::strerror(errno));
  int32_t h[7] = {};
  const size_t got = std::fread(h, sizeof(int32_t), 7, f);
  std::fclose(f);
  if (got != 7) return corrupt(path + ": too short for a llama2.c header");
  const int64_t vocab = h[5] < 0 ? -int64_t{h[5]} : int64_t{h[5]};
  if (h[0] <= 0 || h[1] <= 0 || h[2] <= 0 || h[3] <= 0 || h[4] <= 0 || vocab <= 0 || h[0] > (1 << 16) || h[1] > (1 << 18) ||
      h[2] > 1024 || h[3] > 1024 || h[4] > h[3] || vocab > (1 << 22) || h[0] % h[3] != 0)
    return corrupt(path + ": not a llama2.c version-0 checkpoint (header out of range)");
  ModelConfig c;
  c.hidden_size = h[0];
  c.intermediate_size = h[1];
  c.num_layers = h[2];
  c.num_heads = h[3];
  c.num_kv_heads = h[4];
  c.head_dim = h[0] / h[3];
  c.vocab_size = static_cast<int>(vocab);
  MemoryEstimate e;
  const uint64_t d = static_cast<uint64_t>(c.hidden_size), kvd = static_cast<uint64_t>(c.num_kv_heads) * c.head_dim;
  e.weights = file_size + 4 * static_cast<uint64_t>(c.num_layers) * (d * d + kvd * d);
  e.activations = estimate_activation_bytes(c, batch, seq_len);
  return e;
}

}  // namespace

Result<MemoryEstimate> estimate_model_memory(const std::string& path, int batch, int seq_len) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) return not_found(path + ": no such model");
  if (!fs::is_directory(st)) {
    const uint64_t size = fs::file_size(path, ec);
    if (ec) return io_error(path + ": cannot read its size: " + ec.message());
    if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".gguf") == 0) {
      // The tensors as stored (repacked quantized weights take the same size, Q8_0 6 % more) plus the
      // q/k rows the loader copies into Hugging Face order.
      auto c = gguf_model_config(path);
      if (!c) return c.status();
      MemoryEstimate e;
      const double per_weight = static_cast<double>(size) / static_cast<double>(std::max<uint64_t>(1, parameter_count(c.value())));
      const uint64_t d = static_cast<uint64_t>(c->hidden_size), qd = static_cast<uint64_t>(c->num_heads) * c->head_dim,
                     kvd = static_cast<uint64_t>(c->num_kv_heads) * c->head_dim;
      e.weights = size + static_cast<uint64_t>(per_weight * static_cast<double>(c->num_layers) * static_cast<double>(qd * d + kvd * d));
      e.activations = estimate_activation_bytes(c.value(), batch, seq_len);
      return e;
    }
    return estimate_llama2c(path, size, batch, seq_len);
  }
  if (!fs::exists(path + "/config.json", ec)) {
    const std::string bin = find_llama2c_checkpoint(path);
    if (bin.empty()) return not_found(path + ": neither a Hugging Face model directory (config.json) nor a llama2.c model folder");
    const uint64_t size = fs::file_size(bin, ec);
    if (ec) return io_error(bin + ": cannot read its size: " + ec.message());
    return estimate_llama2c(bin, size, batch, seq_len);
  }
  auto text = read_file(path + "/config.json", size_t{1} << 22);
  if (!text) return text.status();
  auto config = parse_hf_config(text.value(), path + "/config.json");
  if (!config) return config.status();
  MemoryEstimate e;
  for (const auto& entry : fs::directory_iterator(path, ec))
    if (entry.path().extension() == ".safetensors" && entry.is_regular_file(ec)) e.weights += entry.file_size(ec);
  if (e.weights == 0) return not_found(path + ": no .safetensors weights in the directory");
  e.activations = estimate_activation_bytes(config.value(), batch, seq_len);
  return e;
}

}  // namespace pocketllm
