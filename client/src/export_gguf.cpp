// Writes a loaded (possibly fine-tuned) llama-family model as GGUF v3 for llama.cpp and pocketllm:
// canonical names -> GGUF names, HF q/k rows -> Meta's interleaved order (llama.cpp's `llama`
// architecture rotates adjacent pairs), weights converted or quantized tensor by tensor while the file
// is streamed, the SentencePiece vocabulary with token types, and the hyper-parameters.
#include <cmath>
#include <cstring>

#include "arch/llama.h"
#include "gguf_names.h"
#include "tokenizer_hf.h"

#include "pocketllm/client/loader.h"
#include "pocketllm/client/lora.h"
#include "pocketllm/common/utf8.h"
#include "pocketllm/common/gguf.h"
#include "pocketllm/common/quant.h"
#include "pocketllm/common/work_progress.h"

namespace pocketllm {
namespace {

uint32_t file_type_of(DType t) {  // llama.cpp's LLAMA_FTYPE_*
  switch (t) {
    case DType::kF16: return 1;
    case DType::kQ4_0: return 2;
    case DType::kQ8_0: return 7;
    case DType::kBF16: return 32;
    default: return 0;  // ALL_F32
  }
}

std::string base_name(const std::string& path) {
  std::string p = path;
  while (!p.empty() && p.back() == '/') p.pop_back();
  const size_t slash = p.find_last_of('/');
  std::string b = slash == std::string::npos ? p : p.substr(slash + 1);
  const size_t dot = b.find_last_of('.');
  return dot == std::string::npos || dot == 0 ? b : b.substr(0, dot);
}

// Canonical row r of a rotary projection -> the row GGUF stores it at (HF (h, j*hd/2 + i) -> Meta (h, 2i + j)).
size_t meta_row(size_t r, size_t hd) {
  const size_t h = r / hd, k = r % hd, half = hd / 2;
  const size_t j = k / half, i = k % half;
  return h * hd + 2 * i + j;
}

// The tensor's values, in the stored row order, as `to` (F32/F16/BF16 or quantized).
// `shift` is added to every value (Gemma's norms: llama.cpp reads 1 + w).
Status fill_tensor(const Weight& w, DType to, bool rotary, size_t head_dim, float shift, uint8_t* out) {
  if (rotary && w.shape.size() == 1) {  // a q/k bias: its elements follow the rows' order
    std::vector<float> v(w.numel());
    convert_to_f32(w.dtype, w.data, v.size(), v.data());
    auto* o = reinterpret_cast<float*>(out);
    for (size_t r = 0; r < v.size(); ++r) o[meta_row(r, head_dim)] = v[r];
    return Status::ok();
  }
  const size_t rows = w.rows(), cols = w.cols();
  const uint64_t row_bytes = dtype_bytes(to, cols);
  std::vector<float> row(cols);
  std::vector<uint16_t> half(cols);
  // A weight with an adapter is written merged (W + scale B A); only llama/qwen2 reach GGUF export, so
  // the layout is always [out, in].
  const std::vector<float> merged = w.lora_a != nullptr ? merged_weight(w, false) : std::vector<float>();
  for (size_t r = 0; r < rows; ++r) {
    uint8_t* dst = out + (rotary ? meta_row(r, head_dim) : r) * row_bytes;
    if (w.dtype == to && !w.trainable && w.lora_a == nullptr && shift == 0.0f) {  // same type: the stored bytes, unchanged (no requantization loss)
      std::memcpy(dst, static_cast<const uint8_t*>(w.data) + r * row_bytes, static_cast<size_t>(row_bytes));
      continue;
    }
    if (!merged.empty()) std::copy_n(merged.data() + r * cols, cols, row.data());
    else convert_to_f32(w.dtype, static_cast<const uint8_t*>(w.data) + dtype_bytes(w.dtype, r * cols), cols, row.data());
    if (shift != 0.0f)
      for (float& v : row) v += shift;
    for (float v : row)
      if (!std::isfinite(v)) return corrupt("holds a non-finite value; refusing to write it");
    switch (to) {
      case DType::kF32: std::memcpy(dst, row.data(), cols * 4); break;
      case DType::kF16:
        for (size_t i = 0; i < cols; ++i) half[i] = f32_to_f16(row[i]);
        std::memcpy(dst, half.data(), cols * 2);
        break;
      case DType::kBF16:
        for (size_t i = 0; i < cols; ++i) half[i] = f32_to_bf16(row[i]);
        std::memcpy(dst, half.data(), cols * 2);
        break;
      default:
        if (!quantize_checked(to, row.data(), cols, dst)) return internal_error(std::string("cannot quantize to ") + dtype_name(to));
    }
  }
  return Status::ok();
}

std::vector<int32_t> token_types(const SpmVocab& v) {
  if (v.types.size() == v.pieces.size()) return v.types;
  std::vector<int32_t> t(v.pieces.size(), 1);  // normal
  for (size_t i = 0; i < v.pieces.size(); ++i) {
    const std::string& p = v.pieces[i];
    unsigned byte = 0;
    char tail = 0;
    if (p.size() == 6 && std::sscanf(p.c_str(), "<0x%02X>%c", &byte, &tail) == 1) t[i] = 6;  // byte fallback
  }
  if (v.unk >= 0 && static_cast<size_t>(v.unk) < t.size()) t[static_cast<size_t>(v.unk)] = 2;
  for (int32_t id : {v.bos, v.eos})
    if (id >= 0 && static_cast<size_t>(id) < t.size()) t[static_cast<size_t>(id)] = 3;  // control
  return t;
}

void write_bpe_tokenizer(const BpeVocab& v, const Tokenizer& t, gguf::Writer* w) {
  w->set_string("tokenizer.ggml.model", "gpt2");
  w->set_string("tokenizer.ggml.pre", v.pre);
  w->set_string_array("tokenizer.ggml.tokens", v.tokens);
  w->set_i32_array("tokenizer.ggml.token_type", v.types);
  w->set_string_array("tokenizer.ggml.merges", v.merges);
  if (t.bos_id() >= 0) w->set_u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(t.bos_id()));
  if (t.eos_id() >= 0) w->set_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(t.eos_id()));
  if (t.pad_id() >= 0) w->set_u32("tokenizer.ggml.padding_token_id", static_cast<uint32_t>(t.pad_id()));
  w->set_bool("tokenizer.ggml.add_bos_token", v.add_bos);
  w->set_bool("tokenizer.ggml.add_eos_token", false);
}

void write_tokenizer(const SpmVocab& v, gguf::Writer* w) {
  std::vector<std::string> tokens;
  tokens.reserve(v.pieces.size());
  for (const auto& p : v.pieces) tokens.push_back(spm_piece_to_gguf(p));
  w->set_string("tokenizer.ggml.model", "llama");
  w->set_string_array("tokenizer.ggml.tokens", tokens);
  w->set_f32_array("tokenizer.ggml.scores", v.scores);
  w->set_i32_array("tokenizer.ggml.token_type", token_types(v));
  if (v.bos >= 0) w->set_u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(v.bos));
  if (v.eos >= 0) w->set_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(v.eos));
  if (v.unk >= 0) w->set_u32("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(v.unk));
  if (v.pad >= 0) w->set_u32("tokenizer.ggml.padding_token_id", static_cast<uint32_t>(v.pad));
  w->set_bool("tokenizer.ggml.add_bos_token", true);
  w->set_bool("tokenizer.ggml.add_eos_token", false);
  w->set_bool("tokenizer.ggml.add_space_prefix", v.add_space_prefix);
}

// What a gemma3 GGUF cannot say, because llama.cpp fixes it for the architecture: the layer pattern, the
// sliding layers' rope base and the attention scale must be Gemma 3's own.
Status check_gemma3_exportable(const ModelConfig& c) {
  for (int l = 0; l < c.num_layers; ++l)
    if (c.sliding_layers.size() != static_cast<size_t>(c.num_layers) ||
        c.sliding_layers[static_cast<size_t>(l)] != ((l + 1) % kGemma3SlidingPattern != 0))
      return unsupported("GGUF export of a Gemma 3 whose layer types are not five sliding layers to one full one");
  if (c.rope_local_theta != kGemma3LocalRopeBase)
    return unsupported("GGUF export of a Gemma 3 whose sliding layers' rope base is not 10000");
  const double scalar = c.num_layers == 62 ? static_cast<double>(c.hidden_size / c.num_heads) : static_cast<double>(c.head_dim);
  if (std::fabs(c.attention_scale * std::sqrt(scalar) - 1.0) > 1e-6)
    return unsupported("GGUF export of a Gemma 3 whose query_pre_attn_scalar is not " + std::to_string(static_cast<int>(scalar)) +
                       " (llama.cpp derives the attention scale from the head size)");
  if (c.embed_scale != static_cast<float>(std::sqrt(static_cast<double>(c.hidden_size))) || c.norm_weight_offset != 1.0f || !c.qk_norm ||
      !c.sandwich_norms || c.activation != "gelu_pytorch_tanh")
    return unsupported("GGUF export of a Gemma 3 variant llama.cpp does not run the same way");
  return Status::ok();
}

Status write_hyper(const ModelConfig& c, const std::string& arch, gguf::Writer* w) {
  const bool gemma = arch == "gemma3";
  if (gemma) POCKETLLM_RETURN_IF_ERROR(check_gemma3_exportable(c));
  if (!c.rope_scaling.type.empty() && c.rope_scaling.type != "default" && c.rope_scaling.type != "llama3" &&
      !(gemma && c.rope_scaling.type == "linear"))
    return unsupported("GGUF export of rope scaling '" + c.rope_scaling.type + "' is not supported (llama3; linear on gemma3)");
  if (c.attention_out_bias) return unsupported("GGUF export of an attention output bias is not supported");
  if (c.mlp_bias) return unsupported("GGUF export of MLP biases is not supported");
  const std::string a = arch + ".";
  w->set_u32(a + "context_length", static_cast<uint32_t>(c.max_position_embeddings));
  w->set_u32(a + "embedding_length", static_cast<uint32_t>(c.hidden_size));
  w->set_u32(a + "block_count", static_cast<uint32_t>(c.num_layers));
  w->set_u32(a + "feed_forward_length", static_cast<uint32_t>(c.intermediate_size));
  w->set_u32(a + "attention.head_count", static_cast<uint32_t>(c.num_heads));
  w->set_u32(a + "attention.head_count_kv", static_cast<uint32_t>(c.num_kv_heads));
  w->set_u32(a + "rope.dimension_count", static_cast<uint32_t>(c.head_dim));
  if (c.head_dim * c.num_heads != c.hidden_size) {
    w->set_u32(a + "attention.key_length", static_cast<uint32_t>(c.head_dim));
    w->set_u32(a + "attention.value_length", static_cast<uint32_t>(c.head_dim));
  }
  w->set_f32(a + "rope.freq_base", c.rope_theta);
  if (gemma) {
    w->set_u32(a + "attention.sliding_window", static_cast<uint32_t>(c.sliding_window));
    if (c.rope_scaling.type == "linear") {
      w->set_string(a + "rope.scaling.type", "linear");
      w->set_f32(a + "rope.scaling.factor", c.rope_scaling.factor);
    }
  }
  w->set_f32(a + "attention.layer_norm_rms_epsilon", c.norm_eps);
  w->set_u32(a + "vocab_size", static_cast<uint32_t>(c.vocab_size));
  return Status::ok();
}

}  // namespace

// long: metadata, tokenizer and one tensor entry per weight, then the streamed write.
Status export_gguf(const LoadedModel& loaded, const std::string& out_path, const GgufExportOptions& options) {
  const ModelConfig& c = loaded.model->config();
  if (c.arch != Architecture::kLlama && c.arch != Architecture::kGemma3)
    return unsupported(std::string("GGUF export supports llama-family models (llama, mistral, qwen2, qwen3) and gemma3; this one is ") +
                       architecture_name(c.arch));
  const DType to = options.type;
  if (!dtype_is_float_weights(to) && to != DType::kQ8_0 && to != DType::kQ4_0)
    return unsupported(std::string("GGUF export to ") + dtype_name(to) + " (F32, F16, BF16, Q8_0, Q4_0)");
  const SpmVocab* vocab = loaded.tokenizer ? loaded.tokenizer->spm_vocab() : nullptr;
  BpeVocab bpe;
  const bool is_bpe = vocab == nullptr && loaded.tokenizer && bpe_vocab_of(*loaded.tokenizer, &bpe);
  if (vocab == nullptr && !is_bpe)
    return unsupported("GGUF export needs the model's tokenizer: a SentencePiece-style vocabulary (llama2.c tokenizer.bin, a GGUF "
                       "'llama' vocabulary) or a byte-level BPE one with the GPT-2, Llama 3 or Qwen2 pre-tokenizer");
  const bool gemma = c.arch == Architecture::kGemma3;
  const std::string arch = gemma ? "gemma3" : c.model_type == "qwen2" || c.model_type == "qwen3" ? c.model_type : "llama";
  gguf::Writer w;
  w.set_string("general.architecture", arch);
  // GGUF strings are UTF-8; a name read from a file that was not (another tool's GGUF) is written repaired.
  w.set_string("general.name",
               to_valid_utf8(!options.name.empty() ? options.name : !loaded.name.empty() ? loaded.name : base_name(loaded.path)));
  w.set_u32("general.file_type", file_type_of(to));
  if (dtype_is_quantized(to)) w.set_u32("general.quantization_version", 2);
  POCKETLLM_RETURN_IF_ERROR(write_hyper(c, arch, &w));
  if (is_bpe) write_bpe_tokenizer(bpe, *loaded.tokenizer, &w);
  else write_tokenizer(*vocab, &w);
  const size_t hd = static_cast<size_t>(c.head_dim);
  if (c.rope_scaling.type == "llama3") {  // llama.cpp reads Llama 3 scaling as per-frequency divisors
    const std::vector<float> divisors = llama3_rope_divisors(c);
    POCKETLLM_RETURN_IF_ERROR(w.add_tensor("rope_freqs.weight", {divisors.size()}, DType::kF32, [divisors](uint8_t* out) {
      std::memcpy(out, divisors.data(), divisors.size() * 4);
      return Status::ok();
    }));
  }
  struct Progress {
    size_t done = 0, total = 0;
  };
  auto counted = std::make_shared<Progress>();
  for (const auto& wt : loaded.model->weights().all()) {
    if (wt->added_bias != nullptr)
      return unsupported("GGUF export of added biases (--add-biases) is not supported: export a Hugging Face directory");
    if (wt->adapter) continue;  // merged into its base weight
    std::string name;
    if (!hf_to_gguf_name(wt->name, &name, gemma)) return unsupported("tensor '" + wt->name + "' has no GGUF name");
    std::vector<uint64_t> dims(wt->shape.rbegin(), wt->shape.rend());
    DType type = DType::kF32;
    if (dims.size() == 2) type = dtype_is_quantized(to) && dims[0] % dtype_block_size(to) != 0 ? DType::kF16 : to;
    const bool rotary = arch == "llama" && gguf_is_rotary_projection(name);
    const Weight* src = wt.get();
    const float shift = gemma && is_norm_weight(name) ? c.norm_weight_offset : 0.0f;
    ++counted->total;
    POCKETLLM_RETURN_IF_ERROR(w.add_tensor(name, std::move(dims), type, [src, type, rotary, hd, shift, counted](uint8_t* out) {
      Status st = fill_tensor(*src, type, rotary, hd, shift, out);
      if (st) report_work_progress(++counted->done, counted->total);
      return st;
    }));
  }
  return w.write(out_path);
}

}  // namespace pocketllm
