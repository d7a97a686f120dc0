// GGUF models (docs/gguf.md): general.architecture "llama" (Llama 1/2/3, TinyLlama, SmolLM, Mistral-style),
// "qwen2", "qwen3" and "gemma3" (whose norm weights llama.cpp stores as 1 + w: brought back to w).
// Tensors are exposed under their canonical Hugging Face names and shapes (GGUF dims are innermost-first:
// [in, out] is HF's [out, in]); the `llama` writer stores q/k rows in Meta's interleaved rotary order, so
// those rows are brought back to HF's order (a copy of those two tensors; every other tensor, quantized
// or not, is used in place from the map). The same model as llama2.c
// .bin, HF directory or F32 GGUF therefore has one model id.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "arch/llama.h"
#include "gguf_names.h"
#include "tokenizer_hf.h"
#include "file_pages.h"
#include "kernels_quant_packed.h"

#include "pocketllm/client/loader.h"
#include "pocketllm/common/cancel.h"
#include "pocketllm/common/file_util.h"
#include "pocketllm/common/gguf.h"

namespace pocketllm {
namespace {

struct Hyper {
  std::string arch;
  int vocab = 0, hidden = 0, ff = 0, layers = 0, heads = 0, kv_heads = 0, context = 0, head_dim = 0;
  float eps = 1e-5f, theta = 10000.0f;
  int sliding_window = 0;    // gemma3
  float rope_linear = 0.0f;  // gemma3's rope.scaling.factor (linear) on the full-attention layers; 0: none
};

Status read_int(const gguf::File& f, const std::string& key, int* out, bool required, int64_t max) {
  if (!f.find(key)) return required ? not_found(f.path() + ": metadata key '" + key + "' is missing") : Status::ok();
  auto v = f.get_uint(key);
  if (!v) return v.status();
  if (v.value() == 0 || v.value() > static_cast<uint64_t>(max))
    return corrupt(f.path() + ": '" + key + "' = " + std::to_string(v.value()) + " is outside 1.." + std::to_string(max));
  *out = static_cast<int>(v.value());
  return Status::ok();
}

Status read_float(const gguf::File& f, const std::string& key, float* out) {
  if (!f.find(key)) return Status::ok();
  auto v = f.get_float(key);
  if (!v) return v.status();
  if (!(v.value() > 0.0) || !(v.value() < 1e12)) return corrupt(f.path() + ": '" + key + "' = " + std::to_string(v.value()) + " is not a positive number");
  *out = static_cast<float>(v.value());
  return Status::ok();
}

// long: one read per hyper-parameter key, each with its bound.
Result<Hyper> read_hyper(const gguf::File& f) {
  Hyper h;
  auto arch = f.get_string("general.architecture");
  if (!arch) return arch.status();
  h.arch = arch.value();
  if (h.arch != "llama" && h.arch != "qwen2" && h.arch != "qwen3" && h.arch != "gemma3")
    return unsupported(f.path() + ": general.architecture '" + h.arch + "' is not supported (llama, qwen2, qwen3, gemma3)");
  const std::string a = h.arch + ".";
  POCKETLLM_RETURN_IF_ERROR(read_int(f, a + "embedding_length", &h.hidden, true, 1 << 16));
  POCKETLLM_RETURN_IF_ERROR(read_int(f, a + "block_count", &h.layers, true, 1024));
  POCKETLLM_RETURN_IF_ERROR(read_int(f, a + "feed_forward_length", &h.ff, true, 1 << 20));
  POCKETLLM_RETURN_IF_ERROR(read_int(f, a + "attention.head_count", &h.heads, true, 1024));
  h.kv_heads = h.heads;
  POCKETLLM_RETURN_IF_ERROR(read_int(f, a + "attention.head_count_kv", &h.kv_heads, false, 1024));
  h.context = 2048;
  POCKETLLM_RETURN_IF_ERROR(read_int(f, a + "context_length", &h.context, false, 1 << 24));
  POCKETLLM_RETURN_IF_ERROR(read_float(f, a + "attention.layer_norm_rms_epsilon", &h.eps));
  POCKETLLM_RETURN_IF_ERROR(read_float(f, a + "rope.freq_base", &h.theta));
  // The head size is attention.key_length where the file has it (Qwen3: 1024 = 16 heads of 128 in
  // Qwen3-0.6B's 1024-wide stream), else the stream's width over the heads.
  h.head_dim = 0;
  POCKETLLM_RETURN_IF_ERROR(read_int(f, a + "attention.key_length", &h.head_dim, false, 1 << 12));
  if (h.head_dim == 0) {
    if (h.hidden % h.heads != 0)
      return corrupt(f.path() + ": embedding_length " + std::to_string(h.hidden) + " is not a multiple of head_count " +
                     std::to_string(h.heads) + " and the file has no attention.key_length");
    h.head_dim = h.hidden / h.heads;
  }
  int value_length = h.head_dim;
  POCKETLLM_RETURN_IF_ERROR(read_int(f, a + "attention.value_length", &value_length, false, 1 << 12));
  if (value_length != h.head_dim)
    return unsupported(f.path() + ": attention.value_length " + std::to_string(value_length) + " differs from key_length " +
                       std::to_string(h.head_dim));
  int rope_dims = h.head_dim;
  POCKETLLM_RETURN_IF_ERROR(read_int(f, a + "rope.dimension_count", &rope_dims, false, 1 << 12));
  if (rope_dims != h.head_dim)
    return unsupported(f.path() + ": rope.dimension_count " + std::to_string(rope_dims) + " differs from the head size " +
                       std::to_string(h.head_dim) + " (partial rotary embedding is not supported)");
  if (const gguf::Value* st = f.find(a + "rope.scaling.type")) {
    const bool linear = h.arch == "gemma3" && st->type == gguf::Type::kString && st->str == "linear";
    if (!linear && (st->type != gguf::Type::kString || (st->str != "none" && !st->str.empty())))
      return unsupported(f.path() + ": rope scaling '" + std::string(st->type == gguf::Type::kString ? st->str : "?") + "' is not supported");
    if (linear) {
      h.rope_linear = 1.0f;
      POCKETLLM_RETURN_IF_ERROR(read_float(f, a + "rope.scaling.factor", &h.rope_linear));
    }
  }
  if (h.arch == "gemma3") POCKETLLM_RETURN_IF_ERROR(read_int(f, a + "attention.sliding_window", &h.sliding_window, true, 1 << 24));

  const gguf::TensorInfo* embed = f.tensor("token_embd.weight");
  if (!embed) return not_found(f.path() + ": tensor 'token_embd.weight' is missing");
  if (embed->dims.size() != 2 || embed->dims[1] > (1u << 22)) return corrupt(f.path() + ": 'token_embd.weight' is not a [hidden, vocab] matrix");
  h.vocab = static_cast<int>(embed->dims[1]);
  return h;
}

// Rows [h, 2i + j] (Meta) -> [h, j * hd/2 + i] (Hugging Face), for rows of `row_bytes` bytes.
std::shared_ptr<std::vector<uint8_t>> unpermute_rows(const uint8_t* src, uint64_t rows, uint64_t row_bytes, int hd) {
  auto out = std::make_shared<std::vector<uint8_t>>(static_cast<size_t>(rows * row_bytes));
  const uint64_t heads = rows / static_cast<uint64_t>(hd);
  for (uint64_t h = 0; h < heads; ++h)
    for (int i = 0; i < hd / 2; ++i)
      for (int j = 0; j < 2; ++j) {
        const uint64_t meta = h * hd + 2 * i + j, hf = h * hd + j * (hd / 2) + i;
        std::memcpy(out->data() + hf * row_bytes, src + meta * row_bytes, static_cast<size_t>(row_bytes));
      }
  return out;
}

// Gemma's norm weights as the model reads them: llama.cpp's converter stores 1 + w; w is the parameter.
Status add_gemma_norm(const gguf::File& f, const gguf::TensorInfo& t, const std::string& name, WeightStore* ws) {
  if (t.dims.size() != 1 || dtype_is_quantized(t.dtype)) return corrupt(f.path() + ": norm '" + t.name + "' is not a float vector");
  auto buf = std::make_shared<std::vector<uint8_t>>(static_cast<size_t>(t.dims[0]) * 4);
  float* w = reinterpret_cast<float*>(buf->data());
  if (!convert_to_f32(t.dtype, t.data, static_cast<size_t>(t.dims[0]), w)) return corrupt(f.path() + ": norm '" + t.name + "' has no float type");
  for (uint64_t i = 0; i < t.dims[0]; ++i) w[i] -= 1.0f;
  ws->add_view(name, {static_cast<int64_t>(t.dims[0])}, DType::kF32, buf->data());
  ws->keep(std::move(buf));
  return Status::ok();
}

Status add_tensors(const gguf::File& f, const Hyper& h, WeightStore* ws) {
  const bool gemma = h.arch == "gemma3";
  for (const auto& t : f.tensors()) {
    throw_if_cancelled();
    if (t.name == "rope_freqs.weight") continue;  // not a parameter: the rope scaling (recover_llama3_rope)
    std::string name;
    if (!gguf_to_hf_name(t.name, &name, gemma)) return unsupported(f.path() + ": tensor '" + t.name + "' is not part of a " + h.arch + " model");
    std::vector<int64_t> shape(t.dims.rbegin(), t.dims.rend());
    if (gemma && is_norm_weight(name)) {
      POCKETLLM_RETURN_IF_ERROR(add_gemma_norm(f, t, name, ws));
      continue;
    }
    const bool rotary = h.arch == "llama" && gguf_is_rotary_projection(t.name);
    if (!rotary) {
      ws->add_view(name, std::move(shape), t.dtype, t.data);
      continue;
    }
    const uint64_t rows = t.dims.size() == 1 ? t.dims[0] : t.dims[1];
    const uint64_t row_bytes = t.dims.size() == 1 ? dtype_bytes(t.dtype, 1) : dtype_bytes(t.dtype, t.dims[0]);
    if (t.dims.size() == 1 && dtype_is_quantized(t.dtype)) return corrupt(f.path() + ": bias '" + t.name + "' is quantized");
    if (rows % static_cast<uint64_t>(h.head_dim) != 0)
      return corrupt(f.path() + ": '" + t.name + "' has " + std::to_string(rows) + " rows, not whole heads of " + std::to_string(h.head_dim));
    auto buf = unpermute_rows(t.data, rows, row_bytes, h.head_dim);
    release_file_pages(t.data, t.nbytes);  // the copy is what the model reads
    ws->add_view(name, std::move(shape), t.dtype, buf->data());
    ws->keep(std::move(buf));
  }
  return Status::ok();
}

Status read_special_id(const gguf::File& f, const char* key, int32_t* out) {
  if (!f.find(key)) return Status::ok();
  auto x = f.get_uint(key);
  if (!x) return x.status();
  *out = x.value() < (1u << 31) ? static_cast<int32_t>(x.value()) : -2;
  return Status::ok();
}

Result<std::vector<int64_t>> token_types(const gguf::File& f, size_t n) {
  if (!f.find("tokenizer.ggml.token_type")) return std::vector<int64_t>(n, 1);
  auto types = f.get_int_array("tokenizer.ggml.token_type");
  if (!types) return types.status();
  if (types->size() != n)
    return corrupt(f.path() + ": tokenizer.ggml.token_type has " + std::to_string(types->size()) + " entries for " + std::to_string(n) + " tokens");
  return types;
}

// "llama": a SentencePiece vocabulary with scores and byte fallback.
Result<std::unique_ptr<Tokenizer>> read_spm_tokenizer(const gguf::File& f, const std::vector<std::string_view>& tokens) {
  SpmVocab v;
  v.pieces.reserve(tokens.size());
  for (std::string_view t : tokens) v.pieces.push_back(spm_piece_from_gguf(t));
  if (f.find("tokenizer.ggml.scores")) {
    auto scores = f.get_float_array("tokenizer.ggml.scores");
    if (!scores) return scores.status();
    v.scores = std::move(scores.value());
  } else {
    v.scores.assign(v.pieces.size(), 0.0f);
  }
  if (f.find("tokenizer.ggml.token_type")) {
    auto types = token_types(f, tokens.size());
    if (!types) return types.status();
    for (int64_t t : types.value()) v.types.push_back(static_cast<int32_t>(t));
  }
  POCKETLLM_RETURN_IF_ERROR(read_special_id(f, "tokenizer.ggml.bos_token_id", &v.bos));
  POCKETLLM_RETURN_IF_ERROR(read_special_id(f, "tokenizer.ggml.eos_token_id", &v.eos));
  POCKETLLM_RETURN_IF_ERROR(read_special_id(f, "tokenizer.ggml.unknown_token_id", &v.unk));
  v.pad = -1;
  POCKETLLM_RETURN_IF_ERROR(read_special_id(f, "tokenizer.ggml.padding_token_id", &v.pad));
  if (f.find("tokenizer.ggml.add_space_prefix")) {
    auto a = f.get_bool("tokenizer.ggml.add_space_prefix");
    if (!a) return a.status();
    v.add_space_prefix = a.value();
  }
  auto t = make_spm_tokenizer(std::move(v));
  if (!t) return Status(t.status().code(), f.path() + ": " + t.status().message());
  return t;
}

// "gpt2": byte-level BPE with merges and the pre-tokenizer `tokenizer.ggml.pre` names, described as a
// tokenizer.json and built by the Hugging Face tokenizer.
// long: one tokenizer.json field after another, each from its GGUF key.
Result<std::unique_ptr<Tokenizer>> read_bpe_tokenizer(const gguf::File& f, const std::vector<std::string_view>& tokens) {
  using nlohmann::json;
  std::string pre = "default";
  if (f.find("tokenizer.ggml.pre")) {
    auto p = f.get_string("tokenizer.ggml.pre");
    if (!p) return p.status();
    pre = p.value();
  }
  json pre_tokenizer;
  if (!pre_tokenizer_for_gguf(pre, &pre_tokenizer))
    return unsupported(f.path() + ": tokenizer.ggml.pre '" + pre + "' is not supported (gpt-2, llama-bpe, qwen2, default)");
  auto merges = f.get_string_array("tokenizer.ggml.merges");
  if (!merges) return merges.status();
  auto types = token_types(f, tokens.size());
  if (!types) return types.status();
  json vocab = json::object(), added = json::array(), merge_list = json::array();
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string t(tokens[i]);
    if (!vocab.contains(t)) vocab[t] = i;
    const int64_t type = types.value()[i];
    if (type == 3 || type == 4) added.push_back({{"id", i}, {"content", t}, {"special", type == 3}});
  }
  for (std::string_view m : merges.value()) merge_list.push_back(std::string(m));
  json j = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merge_list}, {"ignore_merges", pre == "llama-bpe"}}},
            {"added_tokens", added},
            {"pre_tokenizer", pre_tokenizer},
            {"decoder", {{"type", "ByteLevel"}}}};
  int32_t bos = -1, eos = -1;
  POCKETLLM_RETURN_IF_ERROR(read_special_id(f, "tokenizer.ggml.bos_token_id", &bos));
  POCKETLLM_RETURN_IF_ERROR(read_special_id(f, "tokenizer.ggml.eos_token_id", &eos));
  const auto n = static_cast<int32_t>(tokens.size());
  if (bos < -1 || bos >= n || eos < -1 || eos >= n) return corrupt(f.path() + ": a special token id is outside the vocabulary");
  json config = json::object();
  if (bos >= 0) config["bos_token"] = std::string(tokens[static_cast<size_t>(bos)]);
  if (eos >= 0) config["eos_token"] = std::string(tokens[static_cast<size_t>(eos)]);
  bool add_bos = false;
  if (f.find("tokenizer.ggml.add_bos_token")) {
    auto a = f.get_bool("tokenizer.ggml.add_bos_token");
    if (!a) return a.status();
    add_bos = a.value();
  }
  if (add_bos && bos >= 0) {
    const std::string b(tokens[static_cast<size_t>(bos)]);
    j["post_processor"] = {{"type", "TemplateProcessing"},
                           {"single", {{{"SpecialToken", {{"id", b}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}}};
  }
  return make_hf_tokenizer(j, config, f.path());
}

Result<std::unique_ptr<Tokenizer>> read_tokenizer(const gguf::File& f, int vocab) {
  auto model = f.get_string("tokenizer.ggml.model");
  if (!model) return model.status();
  if (model.value() != "llama" && model.value() != "gpt2")
    return unsupported(f.path() + ": tokenizer.ggml.model '" + model.value() + "' is not supported (llama, gpt2)");
  auto tokens = f.get_string_array("tokenizer.ggml.tokens");
  if (!tokens) return tokens.status();
  if (static_cast<int>(tokens->size()) != vocab)
    return mismatch(f.path() + ": the tokenizer has " + std::to_string(tokens->size()) + " tokens but token_embd.weight has " +
                    std::to_string(vocab) + " rows");
  return model.value() == "llama" ? read_spm_tokenizer(f, tokens.value()) : read_bpe_tokenizer(f, tokens.value());
}

// llama.cpp stores Llama 3's rope scaling as per-frequency divisors (rope_freqs.weight). The HF parameters
// that produce them are recovered from the usual values, so the model exports back to config.json.
Status recover_llama3_rope(const gguf::File& f, ModelConfig* c) {
  const gguf::TensorInfo* t = f.tensor("rope_freqs.weight");
  if (t == nullptr) return Status::ok();
  const size_t n = static_cast<size_t>(c->head_dim / 2);
  if (t->dtype != DType::kF32 || t->dims.size() != 1 || t->dims[0] != n)
    return corrupt(f.path() + ": rope_freqs.weight must be " + std::to_string(n) + " float32 values");
  std::vector<float> got(n);
  std::memcpy(got.data(), t->data, n * 4);
  float factor = 1.0f;
  for (float g : got) {
    if (!(g > 0.0f) || !std::isfinite(g)) return corrupt(f.path() + ": rope_freqs.weight holds a non-positive or non-finite factor");
    factor = std::max(factor, g);
  }
  for (int orig : {8192, 4096, 2048, 16384, 32768, 131072})
    for (float lo : {1.0f, 2.0f})
      for (float hi : {4.0f, 8.0f, 2.0f}) {
        ModelConfig trial = *c;
        trial.rope_scaling = {"llama3", factor, lo, hi, orig};
        const std::vector<float> want = llama3_rope_divisors(trial);
        bool same = true;
        for (size_t i = 0; i < n && same; ++i) same = std::fabs(want[i] - got[i]) <= 1e-4f * got[i];
        if (same) {
          c->rope_scaling = trial.rope_scaling;
          return Status::ok();
        }
      }
  return unsupported(f.path() + ": rope_freqs.weight does not match a Llama 3 rope scaling (factor " + std::to_string(factor) +
                     "); other per-frequency factors are not supported");
}

// What llama.cpp's gemma3 graph implies beyond the file's keys: the sliding layers are five of every six
// (the sixth full), their rope base is 10 000 unscaled, embeddings are scaled by sqrt(width), and q·k by
// 1 / sqrt(head size) — 1 / sqrt(width / heads) for the 62-layer 27B.
void set_gemma3(const Hyper& hp, ModelConfig* c) {
  c->arch = Architecture::kGemma3;
  c->model_type = "gemma3_text";
  c->hf_architecture = "Gemma3ForCausalLM";
  c->activation = "gelu_pytorch_tanh";
  c->qk_norm = true;
  c->sandwich_norms = true;
  c->norm_weight_offset = 1.0f;
  c->embed_scale = static_cast<float>(std::sqrt(static_cast<double>(hp.hidden)));
  const double scalar = hp.layers == 62 ? static_cast<double>(hp.hidden / hp.heads) : static_cast<double>(hp.head_dim);
  c->attention_scale = static_cast<float>(1.0 / std::sqrt(scalar));
  c->sliding_window = hp.sliding_window;
  c->sliding_layers.assign(static_cast<size_t>(hp.layers), false);
  for (int l = 0; l < hp.layers; ++l) c->sliding_layers[static_cast<size_t>(l)] = (l + 1) % kGemma3SlidingPattern != 0;
  c->rope_local_theta = kGemma3LocalRopeBase;
  if (hp.rope_linear > 0.0f) c->rope_scaling = {"linear", hp.rope_linear};
}

ModelConfig config_of(const gguf::File& f, const Hyper& hp) {
  ModelConfig c = llama_config(hp.vocab, hp.hidden, hp.ff, hp.layers, hp.heads, hp.kv_heads, hp.context, f.tensor("output.weight") == nullptr);
  c.head_dim = hp.head_dim;
  c.norm_eps = hp.eps;
  c.rope_theta = hp.theta;
  if (hp.arch == "qwen2") {
    c.model_type = "qwen2";
    c.hf_architecture = "Qwen2ForCausalLM";
    c.attention_qkv_bias = true;
  }
  if (hp.arch == "qwen3") {
    c.model_type = "qwen3";
    c.hf_architecture = "Qwen3ForCausalLM";
    c.qk_norm = true;
  }
  if (hp.arch == "gemma3") set_gemma3(hp, &c);
  // Llama-family files with attention biases (HF's attention_bias): the tensors say so.
  if (f.tensor("blk.0.attn_q.bias") != nullptr) c.attention_qkv_bias = true;
  if (f.tensor("blk.0.attn_output.bias") != nullptr) c.attention_out_bias = true;
  return c;
}

}  // namespace

Result<ModelConfig> gguf_model_config(const std::string& path) {
  auto file = gguf::File::open(path);
  if (!file) return file.status();
  auto h = read_hyper(file.value());
  if (!h) return h.status();
  ModelConfig c = config_of(file.value(), h.value());
  POCKETLLM_RETURN_IF_ERROR(recover_llama3_rope(file.value(), &c));
  return c;
}

Result<LoadedModel> load_gguf(const std::string& path, const LoadOptions& options) {
  auto file = gguf::File::open(path);
  if (!file) return file.status();
  const gguf::File& f = file.value();
  auto h = read_hyper(f);
  if (!h) return h.status();
  WeightStore ws;
  ws.keep(f.keep_alive());
  POCKETLLM_RETURN_IF_ERROR(add_tensors(f, h.value(), &ws));
  const Hyper& hp = h.value();
  ModelConfig c = config_of(f, hp);
  POCKETLLM_RETURN_IF_ERROR(recover_llama3_rope(f, &c));
  LoadedModel out;
  out.path = path;
  out.format = "gguf";
  if (const auto* name = f.find("general.name"); name && name->type == gguf::Type::kString) out.name = std::string(name->str);
  if (options.tokenizer_path.empty() && f.find("tokenizer.ggml.model")) {
    auto t = read_tokenizer(f, hp.vocab);
    if (!t) return t.status();
    c.bos_token_id = t.value()->bos_id();
    c.eos_token_id = t.value()->eos_id();
    out.tokenizer = std::move(t.value());
    out.tokenizer_path = path;
  } else if (!options.tokenizer_path.empty()) {
    auto t = load_llama2c_tokenizer(options.tokenizer_path, hp.vocab);
    if (!t) return t.status();
    out.tokenizer = std::move(t.value());
    out.tokenizer_path = options.tokenizer_path;
  } else if (options.require_tokenizer) {
    return not_found(path + ": the file holds no tokenizer (tokenizer.ggml.model)");
  }
  auto model = LlamaModel::create(c, std::move(ws));
  if (!model) return Status(model.status().code(), path + ": " + model.status().message());
  // Q8_0/Q4_0 matrices repacked for the int8 kernels where the CPU has them; the mapped originals' pages
  // are dropped (they stay readable from the file: the model id and exports read them again).
  const auto* base = static_cast<const uint8_t*>(static_cast<const MappedFile*>(f.keep_alive().get())->data());
  const size_t size = static_cast<const MappedFile*>(f.keep_alive().get())->size();
  pack_quantized_weights(&model.value()->weights(), [base, size](const Weight& w) {
    const auto* p = static_cast<const uint8_t*>(w.data);
    if (p < base || p >= base + size) return;  // an owned copy (q/k rows): kept
    release_file_pages(p, dtype_bytes(w.dtype, w.numel()));
  });
  out.model = std::move(model.value());
  return out;
}

}  // namespace pocketllm
