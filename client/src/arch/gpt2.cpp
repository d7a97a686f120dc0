#include <algorithm>
#include <cmath>

#include "arch/architecture.h"

#include "pocketllm/common/cancel.h"
#include "pocketllm/client/architectures.h"
#include "transformer_base.h"
#include "kernels.h"

namespace pocketllm {
namespace {

class Gpt2Model : public TransformerModel {
 public:
 private:
  std::unique_ptr<TransformerModel> blank() const override { return std::make_unique<Gpt2Model>(); }
  Status bind() override {
    const ModelConfig& c = config_;
    const int64_t d = c.hidden_size, ff = c.intermediate_size, V = c.vocab_size, P = c.max_position_embeddings;
    POCKETLLM_RETURN_IF_ERROR(require("transformer.wte.weight", {V, d}, &wte_));
    POCKETLLM_RETURN_IF_ERROR(require("transformer.wpe.weight", {P, d}, &wpe_));
    POCKETLLM_RETURN_IF_ERROR(require("transformer.ln_f.weight", {d}, &lnf_w_));
    POCKETLLM_RETURN_IF_ERROR(require("transformer.ln_f.bias", {d}, &lnf_b_));
    layers_.resize(static_cast<size_t>(c.num_layers));
    for (int l = 0; l < c.num_layers; ++l) {
      const std::string p = "transformer.h." + std::to_string(l) + ".";
      Layer& L = layers_[l];
      POCKETLLM_RETURN_IF_ERROR(require(p + "ln_1.weight", {d}, &L.ln1_w));
      POCKETLLM_RETURN_IF_ERROR(require(p + "ln_1.bias", {d}, &L.ln1_b));
      POCKETLLM_RETURN_IF_ERROR(require(p + "attn.c_attn.weight", {d, 3 * d}, &L.qkv_w));
      POCKETLLM_RETURN_IF_ERROR(require(p + "attn.c_attn.bias", {3 * d}, &L.qkv_b));
      POCKETLLM_RETURN_IF_ERROR(require(p + "attn.c_proj.weight", {d, d}, &L.proj_w));
      POCKETLLM_RETURN_IF_ERROR(require(p + "attn.c_proj.bias", {d}, &L.proj_b));
      POCKETLLM_RETURN_IF_ERROR(require(p + "ln_2.weight", {d}, &L.ln2_w));
      POCKETLLM_RETURN_IF_ERROR(require(p + "ln_2.bias", {d}, &L.ln2_b));
      POCKETLLM_RETURN_IF_ERROR(require(p + "mlp.c_fc.weight", {d, ff}, &L.fc_w));
      POCKETLLM_RETURN_IF_ERROR(require(p + "mlp.c_fc.bias", {ff}, &L.fc_b));
      POCKETLLM_RETURN_IF_ERROR(require(p + "mlp.c_proj.weight", {ff, d}, &L.out_w));
      POCKETLLM_RETURN_IF_ERROR(require(p + "mlp.c_proj.bias", {d}, &L.out_b));
    }
    return Status::ok();
  }

 public:
  Status forward_hidden(ThreadPool* pool, const TokenBatch& batch, const Perturbation& p, KVCache* cache,
                        std::vector<float>* hidden) override {
    const ModelConfig& c = config_;
    const size_t B = batch.batch, T = batch.seq_len, d = c.hidden_size, ff = c.intermediate_size;
    const size_t nh = c.num_heads, hd = c.head_dim;
    auto begun = begin_decoder_pass(batch, cache, static_cast<size_t>(c.max_position_embeddings));
    if (!begun) return begun.status();
    const size_t past = begun.value();
    const size_t R = lay_out_rows(batch, /*unpadded=*/cache == nullptr);
    size_activations(R, d, ff);
    qkv_.resize(R * 3 * d);
    std::vector<float>& row = embed_row_a_;
    row.resize(d);
    for (size_t r = 0; r < R; ++r) {
      const float* e = weight_rows(*wte_, static_cast<size_t>(batch.tokens[row_token_[r]]), 1, p, tmp_.data());
      const float* pe = weight_rows(*wpe_, past + row_token_[r] % T, 1, p, row.data());
      for (size_t i = 0; i < d; ++i) x_[r * d + i] = e[i] + pe[i];
    }
    const bool selected = reads_selected(cache, R);  // classification: the last layer for the read rows
    const size_t S = read_tokens_.size();
    last_layer_rows_ = selected ? S : R;
    for (size_t l = 0; l < layers_.size(); ++l) {
      const Layer& L = layers_[l];
      throw_if_cancelled();  // between layers: a cancelled pass leaves nothing half-written
      layer_norm(pool, x_.data(), R, d, *L.ln1_w, L.ln1_b, c.norm_eps, p, xn_.data());
      linear_in_out(pool, xn_.data(), R, d, *L.qkv_w, L.qkv_b, p, qkv_.data());
      for (size_t r = 0; r < R; ++r) {
        std::copy_n(&qkv_[r * 3 * d], d, &q_[r * d]);
        std::copy_n(&qkv_[r * 3 * d + d], d, &k_[r * d]);
        std::copy_n(&qkv_[r * 3 * d + 2 * d], d, &v_[r * d]);
      }
      if (selected && l + 1 == layers_.size()) {  // the fused q/k/v product runs on every row; the rest on the read rows
        gather_read_rows(q_.data(), d, T, &sel_in_);
        gather_read_rows(x_.data(), d, T, &sel_x_);
        attend_read_rows(T, nh, nh, hd, /*causal=*/true, sel_in_.data(), k_.data(), v_.data(), attn_.data());
        finish_layer(pool, L, S, sel_x_.data(), p);
      } else {
        attend_rows(pool, B, T, nh, nh, hd, true, q_.data(), k_.data(), v_.data(), cache, l, attn_.data());
        finish_layer(pool, L, R, x_.data(), p);
      }
    }
    if (cache) cache->length = static_cast<int>(past + T);
    if (selected) {
      layer_norm(pool, sel_x_.data(), S, d, *lnf_w_, lnf_b_, c.norm_eps, p, xn_.data());
      scatter_read_rows(batch, xn_.data(), d, hidden);
      return Status::ok();
    }
    layer_norm(pool, x_.data(), R, d, *lnf_w_, lnf_b_, c.norm_eps, p, xn_.data());
    scatter_rows(batch, xn_.data(), d, hidden);
    return Status::ok();
  }

 private:
  struct Layer;
  // Layer L after attention on n rows (every row, or the read rows of the last layer): projection and
  // residual, then the pre-LN MLP and residual. xs is the rows' residual stream, attn_ their attention output.
  void finish_layer(ThreadPool* pool, const Layer& L, size_t n, float* xs, const Perturbation& p) {
    const ModelConfig& c = config_;
    const size_t d = c.hidden_size, ff = c.intermediate_size;
    add_linear(pool, attn_.data(), n, d, *L.proj_w, L.proj_b, p, xs, /*in_out=*/true);
    layer_norm(pool, xs, n, d, *L.ln2_w, L.ln2_b, c.norm_eps, p, xn_.data());
    linear_in_out(pool, xn_.data(), n, d, *L.fc_w, L.fc_b, p, h_.data());
    gelu_tanh(pool, h_.data(), n * ff);
    add_linear(pool, h_.data(), n, ff, *L.out_w, L.out_b, p, xs, /*in_out=*/true);
  }

 protected:
  const Weight& head_weight() const override { return *wte_; }

 private:
  struct Layer {
    const Weight *ln1_w, *ln1_b, *qkv_w, *qkv_b, *proj_w, *proj_b, *ln2_w, *ln2_b, *fc_w, *fc_b, *out_w, *out_b;
  };
  const Weight *wte_ = nullptr, *wpe_ = nullptr, *lnf_w_ = nullptr, *lnf_b_ = nullptr;
  std::vector<Layer> layers_;
  std::vector<float> qkv_;
};


Result<ModelConfig> parse_gpt2_config(const nlohmann::json& j, ModelConfig c, const std::string& where) {
  using namespace arch_config;
  c.max_position_embeddings = 1024;
  POCKETLLM_RETURN_IF_ERROR(read_fields(j, &c, {required("vocab_size", &ModelConfig::vocab_size), required("n_embd", &ModelConfig::hidden_size),
                                                required("n_layer", &ModelConfig::num_layers), required("n_head", &ModelConfig::num_heads),
                                                optional("n_positions", &ModelConfig::max_position_embeddings)}, where));
  c.intermediate_size = 4 * c.hidden_size;
  POCKETLLM_RETURN_IF_ERROR(read_fields(j, &c, {optional("n_inner", &ModelConfig::intermediate_size),
                                                optional("layer_norm_epsilon", &ModelConfig::norm_eps)}, where));
  c.activation = j.value("activation_function", "gelu_new");
  if (c.activation != "gelu_new" && c.activation != "gelu_pytorch_tanh")
    return unsupported(where + ": GPT-2 activation '" + c.activation + "' (supported: gelu_new)");
  if (j.value("scale_attn_by_inverse_layer_idx", false) || j.value("reorder_and_upcast_attn", false))
    return unsupported(where + ": GPT-2 attention variants (scale_attn_by_inverse_layer_idx, reorder_and_upcast_attn)");
  c.tie_word_embeddings = true;
  POCKETLLM_RETURN_IF_ERROR(finish(j, &c, where, false));
  return c;
}

// GPT2LMHeadModel names; a GPT2Model checkpoint lacks "transformer."; attention masks are buffers.
bool gpt2_canonical_name(const std::string& n, std::string* out) {
  auto ends_with = [&](const std::string& e) { return n.size() >= e.size() && n.compare(n.size() - e.size(), e.size(), e) == 0; };
  if (ends_with(".attn.bias") || ends_with(".attn.masked_bias")) return false;
  *out = (n.rfind("transformer.", 0) == 0 || n.rfind("lm_head.", 0) == 0) ? n : "transformer." + n;
  return true;
}

nlohmann::json gpt2_write_config(const ModelConfig& c) {
  return {{"architectures", {"GPT2LMHeadModel"}}, {"model_type", "gpt2"}, {"vocab_size", c.vocab_size},
          {"n_embd", c.hidden_size}, {"n_layer", c.num_layers}, {"n_head", c.num_heads},
          {"n_positions", c.max_position_embeddings}, {"n_inner", c.intermediate_size},
          {"activation_function", "gelu_new"}, {"layer_norm_epsilon", c.norm_eps}};
}

}  // namespace

extern const ArchitectureSpec kGpt2Architecture = {Architecture::kGpt2, "gpt2", {"gpt2"}, "GPT2LMHeadModel", parse_gpt2_config, gpt2_canonical_name,
                                                   nullptr, gpt2_write_config, create_transformer<Gpt2Model>};

}  // namespace pocketllm
