// llama2.c checkpoints (legacy version 0): a 7 x int32 header, then float32 tensors in a fixed
// order. Tensors are exposed under Hugging Face names; q/k rows are permuted from Meta's interleaved
// rotary pairs (2i, 2i+1) to Hugging Face's halves (i, i + hd/2), the permutation HF's conversion
// script applies, so both formats share canonical tensors, model id and perturbations.
#include <sys/stat.h>

#include <cstring>

#include "arch/llama.h"

#include "pocketllm/common/cancel.h"
#include "pocketllm/client/loader.h"
#include "pocketllm/common/file_util.h"

namespace pocketllm {
namespace {

std::string dir_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

bool file_exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// Meta row (h, 2i + j) -> HF row (h, j * hd/2 + i).
std::vector<float> permute_rotary_rows(const float* src, int heads, int hd, int cols) {
  std::vector<float> out(static_cast<size_t>(heads) * hd * cols);
  for (int h = 0; h < heads; ++h)
    for (int i = 0; i < hd / 2; ++i)
      for (int j = 0; j < 2; ++j) {
        const size_t meta = static_cast<size_t>(h) * hd + 2 * i + j;
        const size_t hf = static_cast<size_t>(h) * hd + j * (hd / 2) + i;
        std::memcpy(&out[hf * cols], src + meta * cols, sizeof(float) * cols);
      }
  return out;
}

}  // namespace

// long: reads the llama2.c checkpoint's fixed layout in file order, one bounds check per tensor.
Result<LoadedModel> load_llama2c(const std::string& checkpoint, const LoadOptions& options) {
  auto mapped = MappedFile::open(checkpoint);
  if (!mapped) return mapped.status();
  auto file = std::make_shared<MappedFile>(std::move(mapped.value()));
  if (file->size() < 28) return corrupt(checkpoint + ": too short for a llama2.c header");
  int32_t h[7];
  std::memcpy(h, file->data(), sizeof h);
  const int dim = h[0], hidden = h[1], layers = h[2], heads = h[3], kv_heads = h[4], seq_len = h[6];
  const bool shared = h[5] > 0;
  // In 64 bits: -INT32_MIN does not fit an int32 (a hostile header is refused below, not undefined).
  const int64_t vocab64 = shared ? int64_t{h[5]} : -int64_t{h[5]};
  const int vocab = vocab64 > (1 << 22) ? -1 : static_cast<int>(vocab64);
  if (dim <= 0 || hidden <= 0 || layers <= 0 || heads <= 0 || kv_heads <= 0 || vocab <= 0 || seq_len <= 0 ||
      dim > (1 << 16) || hidden > (1 << 18) || layers > 1024 || heads > 1024 || vocab > (1 << 22) || seq_len > (1 << 22) ||
      dim % heads != 0 || heads % kv_heads != 0)
    return corrupt(checkpoint + ": header (dim " + std::to_string(dim) + ", layers " + std::to_string(layers) + ", heads " +
                   std::to_string(heads) + ", vocab " + std::to_string(h[5]) + ") is not a llama2.c version-0 checkpoint");
  const int hd = dim / heads, kvd = kv_heads * hd;
  const uint64_t L = static_cast<uint64_t>(layers);
  const uint64_t floats = uint64_t(vocab) * dim + L * dim + L * dim * dim + 2 * L * kvd * dim + L * dim * dim + L * dim +
                          3 * L * hidden * dim + dim + uint64_t(seq_len) * hd + (shared ? 0 : uint64_t(vocab) * dim);
  const uint64_t expected = 28 + floats * 4;
  if (file->size() != expected)
    return corrupt(checkpoint + ": " + std::to_string(file->size()) + " bytes, but its header implies " +
                   std::to_string(expected) + (file->size() < expected ? " (truncated?)" : " (not a version-0 checkpoint?)"));

  const float* p = reinterpret_cast<const float*>(file->data() + 28);
  WeightStore ws;
  ws.keep(file);
  auto take = [&p](uint64_t n) {
    const float* at = p;
    p += n;
    return at;
  };
  const int64_t D = dim, H = hidden, V = vocab, KV = kvd;
  ws.add_view("model.embed_tokens.weight", {V, D}, DType::kF32, take(uint64_t(vocab) * dim));
  const float* rms_att = take(L * dim);
  const float* wq = take(L * dim * dim);
  const float* wk = take(L * kvd * dim);
  const float* wv = take(L * kvd * dim);
  const float* wo = take(L * dim * dim);
  const float* rms_ffn = take(L * dim);
  const float* w1 = take(L * hidden * dim);
  const float* w2 = take(L * dim * hidden);
  const float* w3 = take(L * hidden * dim);
  ws.add_view("model.norm.weight", {D}, DType::kF32, take(dim));
  take(uint64_t(seq_len) * hd);  // freq_cis_real + freq_cis_imag: recomputed from rope_theta
  if (!shared) ws.add_view("lm_head.weight", {V, D}, DType::kF32, take(uint64_t(vocab) * dim));
  for (int l = 0; l < layers; ++l) {
    throw_if_cancelled();
    const std::string pre = "model.layers." + std::to_string(l) + ".";
    const uint64_t ul = static_cast<uint64_t>(l);
    ws.add_view(pre + "input_layernorm.weight", {D}, DType::kF32, rms_att + ul * dim);
    ws.add_owned_f32(pre + "self_attn.q_proj.weight", {D, D}, permute_rotary_rows(wq + ul * dim * dim, heads, hd, dim));
    ws.add_owned_f32(pre + "self_attn.k_proj.weight", {KV, D}, permute_rotary_rows(wk + ul * kvd * dim, kv_heads, hd, dim));
    ws.add_view(pre + "self_attn.v_proj.weight", {KV, D}, DType::kF32, wv + ul * kvd * dim);
    ws.add_view(pre + "self_attn.o_proj.weight", {D, D}, DType::kF32, wo + ul * dim * dim);
    ws.add_view(pre + "post_attention_layernorm.weight", {D}, DType::kF32, rms_ffn + ul * dim);
    ws.add_view(pre + "mlp.gate_proj.weight", {H, D}, DType::kF32, w1 + ul * hidden * dim);
    ws.add_view(pre + "mlp.down_proj.weight", {D, H}, DType::kF32, w2 + ul * dim * hidden);
    ws.add_view(pre + "mlp.up_proj.weight", {H, D}, DType::kF32, w3 + ul * hidden * dim);
  }

  ModelConfig c = llama_config(vocab, dim, hidden, layers, heads, kv_heads, seq_len, shared);
  c.head_dim = hd;

  auto model = LlamaModel::create(c, std::move(ws));
  if (!model) return Status(model.status().code(), checkpoint + ": " + model.status().message());
  LoadedModel out;
  out.model = std::move(model.value());
  out.format = "llama2.c";
  out.path = checkpoint;

  std::string tok = options.tokenizer_path;
  if (tok.empty()) {
    const std::string dir = dir_of(checkpoint);
    for (const std::string& cand : {dir + "/tokenizer.bin", dir + "/tok" + std::to_string(vocab) + ".bin"})
      if (file_exists(cand)) tok = cand;
  }
  if (!tok.empty()) {
    auto t = load_llama2c_tokenizer(tok, vocab);
    if (!t) return t.status();
    out.tokenizer = std::move(t.value());
    out.tokenizer_path = tok;
  } else if (options.require_tokenizer) {
    return not_found(checkpoint + ": no tokenizer.bin or tok" + std::to_string(vocab) +
                     ".bin beside the checkpoint (pass the tokenizer path)");
  }
  return out;
}

}  // namespace pocketllm
