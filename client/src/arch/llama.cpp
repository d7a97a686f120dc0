#include "arch/llama.h"

#include "pocketllm/common/cancel.h"

#include "arch/architecture.h"

#include <algorithm>
#include <cmath>

#include "kernels.h"

namespace pocketllm {

std::vector<float> rope_inv_freq(const ModelConfig& c) {
  const int hd = c.head_dim;
  std::vector<float> f(static_cast<size_t>(hd / 2));
  for (int i = 0; i < hd / 2; ++i)
    f[i] = static_cast<float>(1.0 / std::pow(static_cast<double>(c.rope_theta), 2.0 * i / hd));
  if (c.rope_scaling.type == "linear") {
    for (auto& x : f) x = static_cast<float>(x / c.rope_scaling.factor);
  } else if (c.rope_scaling.type == "llama3") {
    const double factor = c.rope_scaling.factor, lo = c.rope_scaling.low_freq_factor, hi = c.rope_scaling.high_freq_factor;
    const double old_ctx = c.rope_scaling.original_max_position_embeddings;
    const double low_wavelen = old_ctx / lo, high_wavelen = old_ctx / hi;
    for (auto& x : f) {
      const double wavelen = 2 * M_PI / x;
      if (wavelen < high_wavelen) continue;
      if (wavelen > low_wavelen) {
        x = static_cast<float>(x / factor);
      } else {
        const double smooth = (old_ctx / wavelen - lo) / (hi - lo);
        x = static_cast<float>((1 - smooth) * x / factor + smooth * x);
      }
    }
  }
  return f;
}

std::vector<float> llama3_rope_divisors(const ModelConfig& c) {
  const int hd = c.head_dim;
  std::vector<float> out(static_cast<size_t>(hd / 2), 1.0f);
  const double factor = c.rope_scaling.factor, lo = c.rope_scaling.low_freq_factor, hi = c.rope_scaling.high_freq_factor;
  const double old_ctx = c.rope_scaling.original_max_position_embeddings;
  for (int i = 0; i < hd / 2; ++i) {
    const double freq = 1.0 / std::pow(static_cast<double>(c.rope_theta), 2.0 * i / hd);
    const double wavelen = 2 * M_PI / freq;
    if (wavelen < old_ctx / hi) continue;
    if (wavelen > old_ctx / lo) {
      out[static_cast<size_t>(i)] = static_cast<float>(factor);
    } else {
      const double smooth = (old_ctx / wavelen - lo) / (hi - lo);
      out[static_cast<size_t>(i)] = static_cast<float>(1.0 / ((1 - smooth) / factor + smooth));
    }
  }
  return out;
}

ModelConfig llama_config(int vocab, int hidden, int intermediate, int layers, int heads, int kv_heads, int max_positions, bool tied) {
  ModelConfig c;
  c.arch = Architecture::kLlama;
  c.hf_architecture = "LlamaForCausalLM";
  c.model_type = "llama";
  c.activation = "silu";
  c.vocab_size = vocab;
  c.hidden_size = hidden;
  c.intermediate_size = intermediate;
  c.num_layers = layers;
  c.num_heads = heads;
  c.num_kv_heads = kv_heads;
  c.head_dim = heads > 0 ? hidden / heads : 0;
  c.max_position_embeddings = max_positions;
  c.norm_eps = 1e-5f;
  c.rope_theta = 10000.0f;
  c.tie_word_embeddings = tied;
  c.bos_token_id = 1;
  c.eos_token_id = 2;
  return c;
}

Result<std::unique_ptr<LlamaModel>> LlamaModel::create(ModelConfig config, WeightStore weights) {
  std::unique_ptr<LlamaModel> m(new LlamaModel());
  POCKETLLM_RETURN_IF_ERROR(m->init(std::move(config), std::move(weights)));
  return m;
}

Status LlamaModel::bind() {
  const ModelConfig& c = config_;
  if (c.hidden_size <= 0 || c.num_layers <= 0 || c.num_heads <= 0 || c.num_kv_heads <= 0 || c.vocab_size <= 0 ||
      c.intermediate_size <= 0 || c.head_dim <= 0)
    return invalid_argument("llama config: sizes must be positive");
  if (c.num_heads % c.num_kv_heads != 0)
    return invalid_argument("llama config: num_attention_heads " + std::to_string(c.num_heads) +
                            " is not a multiple of num_key_value_heads " + std::to_string(c.num_kv_heads));
  if (c.head_dim % 2 != 0) return invalid_argument("llama config: head_dim must be even for rotary embedding");
  if (!c.rope_scaling.type.empty() && c.rope_scaling.type != "llama3" && c.rope_scaling.type != "linear" &&
      c.rope_scaling.type != "default")
    return unsupported("llama config: rope_scaling type '" + c.rope_scaling.type + "' (supported: llama3, linear)");
  if (!c.sliding_layers.empty() && c.sliding_layers.size() != static_cast<size_t>(c.num_layers))
    return invalid_argument("llama config: " + std::to_string(c.sliding_layers.size()) + " layer types for " +
                            std::to_string(c.num_layers) + " layers");
  if (c.sliding_window < 0 || (c.sliding_window == 0 && std::count(c.sliding_layers.begin(), c.sliding_layers.end(), true) > 0))
    return invalid_argument("llama config: sliding-window layers need a positive sliding_window");
  if (!(c.embed_scale > 0.0f) || !std::isfinite(c.embed_scale) || !(c.attention_scale >= 0.0f) || !std::isfinite(c.attention_scale))
    return invalid_argument("llama config: the embedding and attention scales must be positive and finite");
  const int64_t d = c.hidden_size, V = c.vocab_size;
  POCKETLLM_RETURN_IF_ERROR(require("model.embed_tokens.weight", {V, d}, &embed_));
  POCKETLLM_RETURN_IF_ERROR(require("model.norm.weight", {d}, &final_norm_));
  if (c.tie_word_embeddings) {
    head_ = embed_;
  } else {
    POCKETLLM_RETURN_IF_ERROR(require("lm_head.weight", {V, d}, &head_));
  }
  layers_.resize(static_cast<size_t>(c.num_layers));
  for (int l = 0; l < c.num_layers; ++l) POCKETLLM_RETURN_IF_ERROR(bind_layer(l));
  inv_freq_ = rope_inv_freq(c);
  inv_freq_local_.clear();
  if (c.rope_local_theta > 0.0f) {  // Gemma 3's sliding layers: their own base, no scaling
    ModelConfig local = c;
    local.rope_theta = c.rope_local_theta;
    local.rope_scaling = RopeScaling();
    inv_freq_local_ = rope_inv_freq(local);
  }
  return Status::ok();
}

Status LlamaModel::bind_layer(int l) {
  const ModelConfig& c = config_;
  const int64_t d = c.hidden_size, qd = static_cast<int64_t>(c.num_heads) * c.head_dim,
                kvd = static_cast<int64_t>(c.num_kv_heads) * c.head_dim, ff = c.intermediate_size;
  const std::string p = "model.layers." + std::to_string(l) + ".";
  Layer& L = layers_[static_cast<size_t>(l)];
  POCKETLLM_RETURN_IF_ERROR(require(p + "input_layernorm.weight", {d}, &L.attn_norm));
  POCKETLLM_RETURN_IF_ERROR(require(p + "self_attn.q_proj.weight", {qd, d}, &L.q));
  POCKETLLM_RETURN_IF_ERROR(require(p + "self_attn.k_proj.weight", {kvd, d}, &L.k));
  POCKETLLM_RETURN_IF_ERROR(require(p + "self_attn.v_proj.weight", {kvd, d}, &L.v));
  POCKETLLM_RETURN_IF_ERROR(require(p + "self_attn.o_proj.weight", {d, qd}, &L.o));
  if (c.attention_qkv_bias) {
    POCKETLLM_RETURN_IF_ERROR(require(p + "self_attn.q_proj.bias", {qd}, &L.q_bias));
    POCKETLLM_RETURN_IF_ERROR(require(p + "self_attn.k_proj.bias", {kvd}, &L.k_bias));
    POCKETLLM_RETURN_IF_ERROR(require(p + "self_attn.v_proj.bias", {kvd}, &L.v_bias));
  }
  if (c.attention_out_bias) POCKETLLM_RETURN_IF_ERROR(require(p + "self_attn.o_proj.bias", {d}, &L.o_bias));
  if (c.qk_norm) {
    POCKETLLM_RETURN_IF_ERROR(require(p + "self_attn.q_norm.weight", {c.head_dim}, &L.q_norm));
    POCKETLLM_RETURN_IF_ERROR(require(p + "self_attn.k_norm.weight", {c.head_dim}, &L.k_norm));
  }
  if (c.sandwich_norms) {  // Gemma: post_attention_layernorm norms the attention output; the MLP has its own two
    POCKETLLM_RETURN_IF_ERROR(require(p + "post_attention_layernorm.weight", {d}, &L.post_attn_norm));
    POCKETLLM_RETURN_IF_ERROR(require(p + "pre_feedforward_layernorm.weight", {d}, &L.mlp_norm));
    POCKETLLM_RETURN_IF_ERROR(require(p + "post_feedforward_layernorm.weight", {d}, &L.post_mlp_norm));
  } else {
    POCKETLLM_RETURN_IF_ERROR(require(p + "post_attention_layernorm.weight", {d}, &L.mlp_norm));
  }
  POCKETLLM_RETURN_IF_ERROR(require(p + "mlp.gate_proj.weight", {ff, d}, &L.gate));
  POCKETLLM_RETURN_IF_ERROR(require(p + "mlp.up_proj.weight", {ff, d}, &L.up));
  POCKETLLM_RETURN_IF_ERROR(require(p + "mlp.down_proj.weight", {d, ff}, &L.down));
  if (c.mlp_bias) {
    POCKETLLM_RETURN_IF_ERROR(require(p + "mlp.gate_proj.bias", {ff}, &L.gate_bias));
    POCKETLLM_RETURN_IF_ERROR(require(p + "mlp.up_proj.bias", {ff}, &L.up_bias));
    POCKETLLM_RETURN_IF_ERROR(require(p + "mlp.down_proj.bias", {d}, &L.down_bias));
  }
  return Status::ok();
}

void LlamaModel::norm(ThreadPool* pool, const Weight& w, const float* x, size_t rows, float* out, const Perturbation& p) {
  rms_norm(pool, x, rows, static_cast<size_t>(config_.hidden_size), w, config_.norm_eps, p, out, config_.norm_weight_offset);
}

const RopeTable& LlamaModel::rope_of(size_t l) const {
  return !inv_freq_local_.empty() && window_of(l) > 0 ? rope_local_table_ : rope_table_;
}

size_t LlamaModel::window_of(size_t l) const {
  const ModelConfig& c = config_;
  return l < c.sliding_layers.size() && c.sliding_layers[l] ? static_cast<size_t>(c.sliding_window) : 0;
}

Status LlamaModel::forward_hidden(ThreadPool* pool, const TokenBatch& batch, const Perturbation& p, KVCache* cache,
                                  std::vector<float>* hidden) {
  const ModelConfig& c = config_;
  POCKETLLM_RETURN_IF_ERROR(batch.validate(c.vocab_size));
  const size_t B = static_cast<size_t>(batch.batch), T = static_cast<size_t>(batch.seq_len);
  const size_t d = static_cast<size_t>(c.hidden_size);
  size_t past = 0;
  if (cache != nullptr) {
    if (cache->batch != batch.batch) return invalid_argument("KV cache batch differs from the token batch");
    past = static_cast<size_t>(cache->length);
    if (past + T > static_cast<size_t>(cache->capacity))
      return out_of_range("KV cache holds " + std::to_string(cache->capacity) + " positions; " +
                          std::to_string(past + T) + " needed");
    for (int b = 0; b < batch.batch; ++b)
      if (static_cast<size_t>(batch.lengths[b]) != T) return invalid_argument("cached decoding needs equal-length sequences");
  }
  const size_t R = prepare_rows(batch, past, cache == nullptr);

  // Embedding rows, perturbed when the embedding is trainable (only the rows used are generated).
  for (size_t r = 0; r < R; ++r) {
    const size_t id = static_cast<size_t>(std::max(0, batch.tokens[row_token_[r]]));
    const float* row = weight_rows(*embed_, id, 1, p, tmp_.data());
    float* x = x_.data() + r * d;
    if (c.embed_scale != 1.0f) {
      for (size_t i = 0; i < d; ++i) x[i] = row[i] * c.embed_scale;
    } else {
      std::copy_n(row, d, x);
    }
  }
  // Only some tokens read (classification): the last layer runs for their rows alone.
  const bool selected = reads_selected(cache, R);
  last_layer_rows_ = selected ? read_tokens_.size() : R;
  const size_t full_layers = selected ? layers_.size() - 1 : layers_.size();
  if (sequence_groups(pool, B, R, cache) > 1) {
    throw_if_cancelled();
    run_layers_grouped(pool, full_layers, T, p);
  } else {
    for (size_t l = 0; l < full_layers; ++l) {
      throw_if_cancelled();  // between layers: a cancelled pass leaves nothing half-written
      run_layer(pool, l, RowSpan{0, B, 0, R}, T, p, cache, &up_);
    }
  }
  if (selected) {
    throw_if_cancelled();
    run_last_layer_selected(pool, layers_.size() - 1, T, R, p);
  }
  if (cache) cache->length = static_cast<int>(past + T);
  if (selected) {  // sel_x_ holds the read rows' residual stream
    const size_t S = read_tokens_.size();
    norm(pool, *final_norm_, sel_x_.data(), S, xn_.data(), p);
    scatter_read_rows(batch, xn_.data(), d, hidden);
    return Status::ok();
  }
  norm(pool, *final_norm_, x_.data(), R, xn_.data(), p);
  scatter_rows(batch, xn_.data(), d, hidden);
  return Status::ok();
}

// The last layer when only the tokens in read_tokens_ are read: keys and values for every row (the read
// tokens attend to them), the query, attention, output projection and MLP for the S read rows alone. The
// read rows' residual stream is left in sel_x_ [S, d]. Each read row's numbers are those run_layer
// computes for it (the kernels' bytes do not depend on the batch on the packed path).
void LlamaModel::run_last_layer_selected(ThreadPool* pool, size_t l, size_t T, size_t R, const Perturbation& p) {
  const ModelConfig& c = config_;
  const Layer& L = layers_[l];
  const size_t d = static_cast<size_t>(c.hidden_size), hd = static_cast<size_t>(c.head_dim);
  const size_t nh = static_cast<size_t>(c.num_heads), nkv = static_cast<size_t>(c.num_kv_heads);
  const size_t qd = nh * hd, S = read_tokens_.size();
  const RopeTable& rt = rope_of(l);
  norm(pool, *L.attn_norm, x_.data(), R, xn_.data(), p);
  const LinearOutput kv[2] = {{L.k, L.k_bias, k_.data()}, {L.v, L.v_bias, v_.data()}};
  linear_shared_input(pool, xn_.data(), R, d, kv, 2, p);
  norm_heads(pool, L.k_norm, k_.data(), R, nkv, p);
  rope(k_.data(), R, nkv, hd, positions_.data(), rt);
  gather_read_rows(xn_.data(), d, T, &sel_in_);
  gather_read_rows(x_.data(), d, T, &sel_x_);
  sel_pos_.resize(S);
  for (size_t i = 0; i < S; ++i) sel_pos_[i] = positions_[seq_start_[read_tokens_[i] / T] + read_tokens_[i] % T];
  linear(pool, sel_in_.data(), S, d, *L.q, L.q_bias, p, q_.data());
  norm_heads(pool, L.q_norm, q_.data(), S, nh, p);
  rope(q_.data(), S, nh, hd, sel_pos_.data(), rt);
  attend_read_rows(T, nh, nkv, hd, /*causal=*/true, q_.data(), k_.data(), v_.data(), attn_.data(), c.attention_scale,
                   window_of(l));
  linear(pool, attn_.data(), S, qd, *L.o, L.o_bias, p, tmp_.data());
  if (L.post_attn_norm) norm(pool, *L.post_attn_norm, tmp_.data(), S, tmp_.data(), p);
  for (size_t i = 0; i < S * d; ++i) sel_x_[i] += tmp_[i];
  add_mlp(pool, L, 0, S, p, sel_x_.data(), &up_);
}

// The rows of the pass (lay_out_rows: unpadded without a cache), their positions and key lengths, and
// the activations sized for them.
size_t LlamaModel::prepare_rows(const TokenBatch& batch, size_t past, bool unpadded) {
  const ModelConfig& c = config_;
  const size_t B = static_cast<size_t>(batch.batch), T = static_cast<size_t>(batch.seq_len);
  const size_t d = static_cast<size_t>(c.hidden_size), hd = static_cast<size_t>(c.head_dim);
  const size_t qd = static_cast<size_t>(c.num_heads) * hd, kvd = static_cast<size_t>(c.num_kv_heads) * hd;
  const size_t ff = static_cast<size_t>(c.intermediate_size);
  const size_t R = lay_out_rows(batch, unpadded);
  key_len_.resize(B);
  for (size_t b = 0; b < B; ++b) key_len_[b] = static_cast<int32_t>(unpadded ? static_cast<size_t>(batch.lengths[b]) : past + T);
  x_.resize(R * d);
  xn_.resize(R * d);
  q_.resize(R * qd);
  attn_.resize(R * qd);
  gate_.resize(R * ff);  // up_: grown by linear_swiglu when it needs the whole up product
  tmp_.resize(R * d);
  k_.resize(R * kvd);
  v_.resize(R * kvd);
  positions_.resize(R);
  for (size_t r = 0; r < R; ++r) positions_[r] = static_cast<int32_t>(past + row_token_[r] % T);
  rope_table_.ensure(positions_.data(), R, inv_freq_.data(), static_cast<size_t>(config_.head_dim) / 2);
  if (!inv_freq_local_.empty())
    rope_local_table_.ensure(positions_.data(), R, inv_freq_local_.data(), static_cast<size_t>(config_.head_dim) / 2);
  return R;
}

// One decoder layer over the span's rows of x_ (in place). Attention reads the span's sequences only.
void LlamaModel::run_layer(ThreadPool* pool, size_t l, const RowSpan& s, size_t T, const Perturbation& p, KVCache* cache,
                           std::vector<float>* up) {
  const ModelConfig& c = config_;
  const Layer& L = layers_[l];
  const size_t d = static_cast<size_t>(c.hidden_size), hd = static_cast<size_t>(c.head_dim);
  const size_t nh = static_cast<size_t>(c.num_heads), nkv = static_cast<size_t>(c.num_kv_heads);
  const size_t qd = nh * hd, kvd = nkv * hd, R = s.r1 - s.r0;
  float *x = x_.data() + s.r0 * d, *xn = xn_.data() + s.r0 * d, *tmp = tmp_.data() + s.r0 * d;
  float *q = q_.data() + s.r0 * qd, *k = k_.data() + s.r0 * kvd, *v = v_.data() + s.r0 * kvd;
  const int32_t* pos = positions_.data() + s.r0;
  norm(pool, *L.attn_norm, x, R, xn, p);
  const LinearOutput qkv[3] = {{L.q, L.q_bias, q}, {L.k, L.k_bias, k}, {L.v, L.v_bias, v}};
  linear_shared_input(pool, xn, R, d, qkv, 3, p);
  norm_heads(pool, L.q_norm, q, R, nh, p);
  norm_heads(pool, L.k_norm, k, R, nkv, p);
  rope(q, R, nh, hd, pos, rope_of(l));
  rope(k, R, nkv, hd, pos, rope_of(l));
  attend_rows(pool, s.b1 - s.b0, T, nh, nkv, hd, /*causal=*/true, q_.data(), k_.data(), v_.data(), cache, l, attn_.data(),
              c.attention_scale, window_of(l), s.b0);
  linear(pool, attn_.data() + s.r0 * qd, R, qd, *L.o, L.o_bias, p, tmp);
  if (L.post_attn_norm) norm(pool, *L.post_attn_norm, tmp, R, tmp, p);
  for (size_t i = 0; i < R * d; ++i) x[i] += tmp[i];

  add_mlp(pool, L, s.r0, R, p, x, up);
}

// Qwen3's query/key norm: every head of x [rows, heads * head_dim] through an RMSNorm of head_dim, in
// place (rms_norm reads a row whole before writing it). No-op for models without it.
void LlamaModel::norm_heads(ThreadPool* pool, const Weight* norm, float* x, size_t rows, size_t heads, const Perturbation& p) {
  if (norm == nullptr) return;
  rms_norm(pool, x, rows * heads, static_cast<size_t>(config_.head_dim), *norm, config_.norm_eps, p, x, config_.norm_weight_offset);
}

// residual[rows, d] += the layer's SwiGLU MLP of its normalised rows (rows from r0 of xn_, gate_, tmp_ and
// `up` as scratch).
void LlamaModel::add_mlp(ThreadPool* pool, const Layer& L, size_t r0, size_t rows, const Perturbation& p, float* residual,
                         std::vector<float>* up) {
  const ModelConfig& c = config_;
  const size_t d = static_cast<size_t>(c.hidden_size), ff = static_cast<size_t>(c.intermediate_size);
  float *xn = xn_.data() + r0 * d, *gate = gate_.data() + r0 * ff, *tmp = tmp_.data() + r0 * d;
  norm(pool, *L.mlp_norm, residual, rows, xn, p);
  const GateActivation act = c.activation == "gelu_pytorch_tanh" ? GateActivation::kGeluTanh : GateActivation::kSilu;
  gated_mlp(pool, xn, rows, d, *L.gate, L.gate_bias, *L.up, L.up_bias, *L.down, L.down_bias, p, gate, up, act, tmp);
  if (L.post_mlp_norm) norm(pool, *L.post_mlp_norm, tmp, rows, tmp, p);
  for (size_t i = 0; i < rows * d; ++i) residual[i] += tmp[i];
}

Status parse_rope_scaling(const nlohmann::json& j, ModelConfig* c, const std::string& where) {
  if (!j.contains("rope_scaling") || !j["rope_scaling"].is_object()) return Status::ok();
  const nlohmann::json& r = j["rope_scaling"];
  const std::string type = r.value("rope_type", r.value("type", std::string()));
  c->rope_scaling.type = type;
  if (type == "linear") {
    const nlohmann::json& f = r.contains("factor") ? r["factor"] : nlohmann::json();
    if (!f.is_number() || !(f.get<double>() > 0) || !std::isfinite(f.get<double>()))
      return corrupt(where + ": rope_scaling factor must be a positive number");
    c->rope_scaling.factor = f.get<float>();
  } else if (type == "llama3") {
    c->rope_scaling.factor = r.value("factor", 1.0f);
    c->rope_scaling.low_freq_factor = r.value("low_freq_factor", 1.0f);
    c->rope_scaling.high_freq_factor = r.value("high_freq_factor", 4.0f);
    c->rope_scaling.original_max_position_embeddings = r.value("original_max_position_embeddings", 8192);
  } else if (type != "default") {
    return unsupported(where + ": rope_scaling type '" + type + "' is not supported (supported: llama3, linear)");
  }
  return Status::ok();
}

bool llama_canonical_name(const std::string& n, std::string* out) {
  *out = n;
  return true;
}

void llama_resolve_ties(ModelConfig* c, const WeightStore& ws) {
  if (!c->tie_word_embeddings && ws.find("lm_head.weight") == nullptr && ws.find("model.embed_tokens.weight") != nullptr)
    c->tie_word_embeddings = true;
}

void write_rope_scaling(const ModelConfig& c, nlohmann::json* out) {
  nlohmann::json& j = *out;
  if (c.rope_scaling.type == "linear") j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", c.rope_scaling.factor}};
  if (c.rope_scaling.type == "llama3")
    j["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", c.rope_scaling.factor},
                         {"low_freq_factor", c.rope_scaling.low_freq_factor},
                         {"high_freq_factor", c.rope_scaling.high_freq_factor},
                         {"original_max_position_embeddings", c.rope_scaling.original_max_position_embeddings}};
}

namespace {

Result<ModelConfig> parse_llama_config(const nlohmann::json& j, ModelConfig c, const std::string& where) {
  using namespace arch_config;
  c.activation = "silu";
  POCKETLLM_RETURN_IF_ERROR(read_fields(j, &c, {required("vocab_size", &ModelConfig::vocab_size), required("hidden_size", &ModelConfig::hidden_size),
                                                required("intermediate_size", &ModelConfig::intermediate_size),
                                                required("num_hidden_layers", &ModelConfig::num_layers),
                                                required("num_attention_heads", &ModelConfig::num_heads)}, where));
  c.num_kv_heads = c.num_heads;
  if (c.num_heads <= 0 || c.hidden_size <= 0) return corrupt(where + ": hidden_size and num_attention_heads must be positive");
  c.head_dim = c.hidden_size / c.num_heads;
  c.norm_eps = 1e-6f;
  POCKETLLM_RETURN_IF_ERROR(read_fields(j, &c, {optional("num_key_value_heads", &ModelConfig::num_kv_heads), optional("head_dim", &ModelConfig::head_dim),
                                                optional("max_position_embeddings", &ModelConfig::max_position_embeddings),
                                                optional("rms_norm_eps", &ModelConfig::norm_eps), optional("rope_theta", &ModelConfig::rope_theta)},
                                            where));
  if (j.contains("tie_word_embeddings") && j["tie_word_embeddings"].is_boolean()) c.tie_word_embeddings = j["tie_word_embeddings"].get<bool>();
  if (c.model_type == "qwen2") c.attention_qkv_bias = true;
  if (c.model_type == "qwen3") c.qk_norm = true;
  // Qwen2/Qwen3 configs name a sliding window that their released checkpoints leave off; a model that
  // turns it on attends differently, which this engine does not do.
  if (j.contains("use_sliding_window") && j["use_sliding_window"].is_boolean() && j["use_sliding_window"].get<bool>())
    return unsupported(where + ": use_sliding_window is true (sliding-window attention is not supported)");
  if (j.contains("attention_bias") && j["attention_bias"].is_boolean() && j["attention_bias"].get<bool>()) {
    c.attention_qkv_bias = true;
    c.attention_out_bias = true;
  }
  if (j.contains("mlp_bias") && j["mlp_bias"].is_boolean() && j["mlp_bias"].get<bool>()) c.mlp_bias = true;
  POCKETLLM_RETURN_IF_ERROR(parse_rope_scaling(j, &c, where));
  special_tokens(j, &c);
  return c;
}


nlohmann::json llama_write_config(const ModelConfig& c) {
  nlohmann::json j = {{"architectures", {c.hf_architecture}}, {"model_type", c.model_type}, {"vocab_size", c.vocab_size},
                      {"hidden_size", c.hidden_size}, {"intermediate_size", c.intermediate_size},
                      {"num_hidden_layers", c.num_layers}, {"num_attention_heads", c.num_heads},
                      {"num_key_value_heads", c.num_kv_heads}, {"head_dim", c.head_dim},
                      {"max_position_embeddings", c.max_position_embeddings}, {"rms_norm_eps", c.norm_eps},
                      {"rope_theta", c.rope_theta}, {"tie_word_embeddings", c.tie_word_embeddings}, {"hidden_act", "silu"}};
  if (c.attention_out_bias) j["attention_bias"] = true;
  if (c.mlp_bias) j["mlp_bias"] = true;
  write_rope_scaling(c, &j);
  return j;
}

}  // namespace

Result<std::unique_ptr<LanguageModel>> create_llama(ModelConfig config, WeightStore weights) {
  auto m = LlamaModel::create(std::move(config), std::move(weights));
  if (!m) return m.status();
  return std::unique_ptr<LanguageModel>(std::move(m.value()));
}

extern const ArchitectureSpec kLlamaArchitecture = {Architecture::kLlama,  "llama",           {"llama", "qwen2", "qwen3", "mistral"}, "LlamaForCausalLM",
                                                    parse_llama_config,   llama_canonical_name, llama_resolve_ties,
                                                    llama_write_config,   create_llama};

}  // namespace pocketllm
