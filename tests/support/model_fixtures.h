// Random models for tests: a small Llama built in memory, or written to disk as a Hugging Face
// directory, so the suite needs nothing beyond what it generates.
#pragma once

#include <cmath>
#include <map>
#include <memory>
#include <stdexcept>
#include <random>
#include <string>
#include <vector>

#include "arch/llama.h"
#include "pocketllm/client/dataset.h"
#include "pocketllm/client/task.h"
#include "test_env.h"
#include "pocketllm/common/safetensors.h"

namespace pocketllm::test {

struct TensorData {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;
};

inline ModelConfig tiny_llama_config(int vocab = 67, int d = 24, int layers = 2, int heads = 4, int kv_heads = 2,
                                     int ff = 37, bool tied = false, bool qkv_bias = false) {
  ModelConfig c = llama_config(vocab, d, ff, layers, heads, kv_heads, 64, tied);
  c.model_type = qkv_bias ? "qwen2" : "llama";
  c.attention_qkv_bias = qkv_bias;
  return c;
}

// A Gemma 3 of the given sizes as llama.cpp runs every gemma3 file: five sliding layers to one full,
// the sliding rope base 10 000, query_pre_attn_scalar = head_dim, embeddings times sqrt(d).
inline ModelConfig tiny_gemma3_config(int vocab, int d, int layers, int heads, int kv_heads, int head_dim, int ff, int window) {
  ModelConfig c = llama_config(vocab, d, ff, layers, heads, kv_heads, 64, /*tied=*/true);
  c.arch = Architecture::kGemma3;
  c.model_type = "gemma3_text";
  c.hf_architecture = "Gemma3ForCausalLM";
  c.activation = "gelu_pytorch_tanh";
  c.head_dim = head_dim;
  c.norm_eps = 1e-6f;
  c.rope_theta = 1e6f;
  c.rope_local_theta = 10000.0f;
  c.qk_norm = true;
  c.sandwich_norms = true;
  c.norm_weight_offset = 1.0f;
  c.embed_scale = std::sqrt(static_cast<float>(d));
  c.attention_scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  c.sliding_window = window;
  for (int l = 0; l < layers; ++l) c.sliding_layers.push_back((l + 1) % 6 != 0);
  return c;
}

inline std::vector<TensorData> random_llama_tensors(const ModelConfig& c, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.0f, 0.2f);
  std::vector<TensorData> out;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, bool ones = false) {
    size_t count = 1;
    for (auto d : shape) count *= static_cast<size_t>(d);
    TensorData t{name, shape, std::vector<float>(count)};
    for (auto& v : t.values) v = ones ? 1.0f + 0.1f * n(rng) : n(rng);
    out.push_back(std::move(t));
  };
  const int64_t d = c.hidden_size, qd = int64_t(c.num_heads) * c.head_dim, kvd = int64_t(c.num_kv_heads) * c.head_dim,
                ff = c.intermediate_size, V = c.vocab_size;
  add("model.embed_tokens.weight", {V, d});
  add("model.norm.weight", {d}, true);
  if (!c.tie_word_embeddings) add("lm_head.weight", {V, d});
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {d}, true);
    add(p + "self_attn.q_proj.weight", {qd, d});
    add(p + "self_attn.k_proj.weight", {kvd, d});
    add(p + "self_attn.v_proj.weight", {kvd, d});
    add(p + "self_attn.o_proj.weight", {d, qd});
    if (c.attention_qkv_bias) {
      add(p + "self_attn.q_proj.bias", {qd});
      add(p + "self_attn.k_proj.bias", {kvd});
      add(p + "self_attn.v_proj.bias", {kvd});
    }
    add(p + "post_attention_layernorm.weight", {d}, true);
    add(p + "mlp.gate_proj.weight", {ff, d});
    add(p + "mlp.up_proj.weight", {ff, d});
    add(p + "mlp.down_proj.weight", {d, ff});
    if (c.sandwich_norms) {  // Gemma 3
      add(p + "pre_feedforward_layernorm.weight", {d}, true);
      add(p + "post_feedforward_layernorm.weight", {d}, true);
    }
    if (c.qk_norm) {  // Qwen3
      add(p + "self_attn.q_norm.weight", {c.head_dim}, true);
      add(p + "self_attn.k_norm.weight", {c.head_dim}, true);
    }
  }
  return out;
}

inline std::unique_ptr<LlamaModel> make_llama(const ModelConfig& c, const std::vector<TensorData>& tensors) {
  WeightStore ws;
  for (const auto& t : tensors) ws.add_owned_f32(t.name, t.shape, t.values);
  auto m = LlamaModel::create(c, std::move(ws));
  if (!m) throw std::runtime_error(m.status().to_string());
  return std::move(m.value());
}

// Logits of every real position of `seqs` (padded into one batch; token ids taken modulo the vocabulary),
// [positions, vocab] in sequence order.
inline std::vector<float> all_position_logits(LanguageModel& m, const std::vector<std::vector<int32_t>>& seqs) {
  TokenBatch b = TokenBatch::from_sequences(seqs, 0);
  for (auto& t : b.tokens) t %= m.config().vocab_size;
  std::vector<float> hidden, logits;
  if (!m.forward_hidden(nullptr, b, Perturbation{}, nullptr, &hidden).is_ok()) throw std::runtime_error("forward failed");
  std::vector<int> rows;
  for (int i = 0; i < b.batch; ++i)
    for (int t = 0; t < b.lengths[i]; ++t) rows.push_back(i * b.seq_len + t);
  m.logits(nullptr, hidden.data(), rows, Perturbation{}, &logits);
  return logits;
}

// Logits [B * T, vocab] of every row of `b`, padding rows included, with the weights perturbed by p.
inline std::vector<float> all_row_logits(LanguageModel& m, const TokenBatch& b, const Perturbation& p = {}) {
  std::vector<float> hidden, out;
  if (!m.forward_hidden(nullptr, b, p, nullptr, &hidden).is_ok()) throw std::runtime_error("forward failed");
  std::vector<int> rows(b.tokens.size());
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<int>(i);
  m.logits(nullptr, hidden.data(), rows, p, &out);
  return out;
}

// A task over eight short sentences of the toy tokenizer (write_toy_model_dir), labels 0 / 1 alternating
// with the label words "cat" / "the": `kind` "lm" or "classify". Batches of 3 take different lengths.
inline std::unique_ptr<Task> toy_sentence_task(const std::string& kind, const Tokenizer& tokenizer, const LanguageModel& model) {
  Dataset ds;
  ds.path = "mem";
  const std::vector<std::string> texts = {"the cat", "a hat at the bed", "he had a cat", "the bad cat sat",
                                          "a good cat", "the hat", "cat cat cat cat", "the end"};
  for (size_t i = 0; i < texts.size(); ++i) ds.examples.push_back({texts[i], "", i % 2 ? "1" : "0", int(i) + 1});
  TaskOptions to;
  to.kind = kind;
  to.label_words = parse_label_words("0:cat,1:the").value();
  auto task = make_task(ds, tokenizer, model, to);
  if (!task) throw std::runtime_error(task.status().to_string());
  return std::move(task.value());
}

// max |a - b| over max |b|: the relative error of a against the reference b.
inline double max_relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) throw std::runtime_error("sizes differ");
  double scale = 0, diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
    diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - b[i]));
  }
  return diff / std::max(scale, 1e-30);
}

inline std::string temp_dir(const std::string& name) { return server::test::temp_dir(name.empty() ? "test" : name); }

}  // namespace pocketllm::test

#include <fstream>
#include <nlohmann/json.hpp>

#include "pocketllm/common/safetensors.h"

namespace pocketllm::test {

// A llama2.c-format tokenizer: <unk>, <s>, </s>, the 256 byte tokens, then a few pieces with scores.
inline void write_toy_tokenizer(const std::string& path, const std::vector<std::string>& extra_pieces) {
  std::ofstream out(path, std::ios::binary);
  const int32_t max_len = 16;
  out.write(reinterpret_cast<const char*>(&max_len), 4);
  auto put = [&](const std::string& piece, float score) {
    const int32_t len = static_cast<int32_t>(piece.size());
    out.write(reinterpret_cast<const char*>(&score), 4);
    out.write(reinterpret_cast<const char*>(&len), 4);
    out.write(piece.data(), len);
  };
  put("<unk>", 0);
  put("\n<s>\n", 0);
  put("\n</s>\n", 0);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    put(name, 0);
  }
  float score = -1;
  for (const auto& p : extra_pieces) put(p, score--);
}

// A random Llama as a Hugging Face directory with a toy tokenizer.bin; returns the config.
inline ModelConfig write_toy_model_dir(const std::string& dir, uint32_t seed, bool tied = true) {
  std::vector<std::string> pieces = {" ", "a", "b", "c", "d", "e", "t", "h", " t", "he", " the", " a", "at", " c", " cat",
                                     " good", " bad", " It", " was", "s"};
  write_toy_tokenizer(dir + "/tokenizer.bin", pieces);
  ModelConfig c = tiny_llama_config(259 + static_cast<int>(pieces.size()), 24, 2, 4, 2, 40, tied);
  c.max_position_embeddings = 128;
  const auto tensors = random_llama_tensors(c, seed);
  std::vector<TensorToWrite> w;
  for (const auto& t : tensors) w.push_back({t.name, DType::kF32, t.shape, t.values.data()});
  if (!write_safetensors(dir + "/model.safetensors", w).is_ok()) throw std::runtime_error("write model");
  nlohmann::json cfg = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"vocab_size", c.vocab_size},
                        {"hidden_size", c.hidden_size}, {"intermediate_size", c.intermediate_size},
                        {"num_hidden_layers", c.num_layers}, {"num_attention_heads", c.num_heads},
                        {"num_key_value_heads", c.num_kv_heads}, {"max_position_embeddings", c.max_position_embeddings},
                        {"rms_norm_eps", 1e-5}, {"tie_word_embeddings", tied}, {"bos_token_id", 1}, {"eos_token_id", 2}};
  std::ofstream(dir + "/config.json") << cfg.dump();
  return c;
}

inline void write_lines(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream out(path);
  for (const auto& l : lines) out << l << "\n";
}

// Every tensor of a safetensors file as its raw bytes, by name (throws when the file does not open).
inline std::map<std::string, std::string> tensor_bytes(const std::string& path) {
  auto f = SafetensorsFile::open(path);
  if (!f) throw std::runtime_error(path + ": " + f.status().message());
  std::map<std::string, std::string> out;
  for (const auto& t : f->tensors()) out[t.name] = std::string(reinterpret_cast<const char*>(f->raw(t)), t.nbytes);
  return out;
}

}  // namespace pocketllm::test
