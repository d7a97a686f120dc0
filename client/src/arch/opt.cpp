#include <algorithm>
#include <cmath>

#include "arch/architecture.h"

#include "pocketllm/common/cancel.h"
#include "pocketllm/client/architectures.h"
#include "transformer_base.h"
#include "kernels.h"

namespace pocketllm {
namespace {

class OptModel : public TransformerModel {
 public:
 private:
  std::unique_ptr<TransformerModel> blank() const override { return std::make_unique<OptModel>(); }
  Status bind() override {
    const ModelConfig& c = config_;
    const int64_t d = c.hidden_size, ff = c.intermediate_size, V = c.vocab_size;
    const int64_t e = c.word_embed_proj_dim > 0 ? c.word_embed_proj_dim : d;
    const int64_t P = c.max_position_embeddings + c.position_offset;
    const std::string pre = "model.decoder.";
    POCKETLLM_RETURN_IF_ERROR(require(pre + "embed_tokens.weight", {V, e}, &embed_));
    POCKETLLM_RETURN_IF_ERROR(require(pre + "embed_positions.weight", {P, d}, &pos_));
    if (e != d) {
      POCKETLLM_RETURN_IF_ERROR(require(pre + "project_in.weight", {d, e}, &project_in_));
      POCKETLLM_RETURN_IF_ERROR(require(pre + "project_out.weight", {e, d}, &project_out_));
    }
    if (c.do_layer_norm_before) {
      POCKETLLM_RETURN_IF_ERROR(require(pre + "final_layer_norm.weight", {d}, &final_w_));
      POCKETLLM_RETURN_IF_ERROR(require(pre + "final_layer_norm.bias", {d}, &final_b_));
    }
    head_ = store_->find("lm_head.weight");
    if (head_ == nullptr || c.tie_word_embeddings) head_ = embed_;
    layers_.resize(static_cast<size_t>(c.num_layers));
    for (int l = 0; l < c.num_layers; ++l) {
      const std::string p = pre + "layers." + std::to_string(l) + ".";
      Layer& L = layers_[l];
      for (auto [name, w, b] : {std::make_tuple("self_attn.q_proj", &L.q, &L.qb), std::make_tuple("self_attn.k_proj", &L.k, &L.kb),
                                std::make_tuple("self_attn.v_proj", &L.v, &L.vb), std::make_tuple("self_attn.out_proj", &L.o, &L.ob)}) {
        POCKETLLM_RETURN_IF_ERROR(require(p + name + ".weight", {d, d}, w));
        POCKETLLM_RETURN_IF_ERROR(require(p + name + ".bias", {d}, b));
      }
      POCKETLLM_RETURN_IF_ERROR(require(p + "self_attn_layer_norm.weight", {d}, &L.ln1_w));
      POCKETLLM_RETURN_IF_ERROR(require(p + "self_attn_layer_norm.bias", {d}, &L.ln1_b));
      POCKETLLM_RETURN_IF_ERROR(require(p + "fc1.weight", {ff, d}, &L.fc1));
      POCKETLLM_RETURN_IF_ERROR(require(p + "fc1.bias", {ff}, &L.fc1_b));
      POCKETLLM_RETURN_IF_ERROR(require(p + "fc2.weight", {d, ff}, &L.fc2));
      POCKETLLM_RETURN_IF_ERROR(require(p + "fc2.bias", {d}, &L.fc2_b));
      POCKETLLM_RETURN_IF_ERROR(require(p + "final_layer_norm.weight", {d}, &L.ln2_w));
      POCKETLLM_RETURN_IF_ERROR(require(p + "final_layer_norm.bias", {d}, &L.ln2_b));
    }
    return Status::ok();
  }

 public:
  // long: the OPT forward pass layer by layer (pre- or post-LN, projections in and out) as the paper draws it.
  Status forward_hidden(ThreadPool* pool, const TokenBatch& batch, const Perturbation& p, KVCache* cache,
                        std::vector<float>* hidden) override {
    const ModelConfig& c = config_;
    const size_t B = batch.batch, T = batch.seq_len, d = c.hidden_size, ff = c.intermediate_size;
    const size_t e = head_input_dim(), nh = c.num_heads, hd = c.head_dim;
    auto begun = begin_decoder_pass(batch, cache, static_cast<size_t>(c.max_position_embeddings));
    if (!begun) return begun.status();
    const size_t past = begun.value();
    const size_t R = lay_out_rows(batch, /*unpadded=*/cache == nullptr);
    size_activations(R, std::max(d, e), ff);  // the embedding width e may exceed d (project_in)
    // Token embeddings (width e), projected in when e != d, plus positions (offset 2).
    for (size_t r = 0; r < R; ++r) {
      const float* row = weight_rows(*embed_, static_cast<size_t>(batch.tokens[row_token_[r]]), 1, p, tmp_.data());
      std::copy_n(row, e, &xn_[r * e]);
    }
    if (project_in_) linear(pool, xn_.data(), R, e, *project_in_, nullptr, p, x_.data());
    else std::copy_n(xn_.data(), R * d, x_.data());
    for (size_t r = 0; r < R; ++r) {
      const float* pe = weight_rows(*pos_, past + row_token_[r] % T + c.position_offset, 1, p, tmp_.data());
      for (size_t i = 0; i < d; ++i) x_[r * d + i] += pe[i];
    }
    // OPT scales q by hd^-0.5 before QK^T; attention() applies the same scale to the scores.
    const bool selected = reads_selected(cache, R);  // classification: the last layer for the read rows
    const size_t S = read_tokens_.size();
    last_layer_rows_ = selected ? S : R;
    for (size_t l = 0; l < layers_.size(); ++l) {
      const Layer& L = layers_[l];
      throw_if_cancelled();  // between layers: a cancelled pass leaves nothing half-written
      const float* attn_in = x_.data();
      if (c.do_layer_norm_before) {
        layer_norm(pool, x_.data(), R, d, *L.ln1_w, L.ln1_b, c.norm_eps, p, xn_.data());
        attn_in = xn_.data();
      }
      if (selected && l + 1 == layers_.size()) {  // keys and values of every row, the rest for the read rows
        const LinearOutput kv[2] = {{L.k, L.kb, k_.data()}, {L.v, L.vb, v_.data()}};
        linear_shared_input(pool, attn_in, R, d, kv, 2, p);
        gather_read_rows(attn_in, d, T, &sel_in_);
        gather_read_rows(x_.data(), d, T, &sel_x_);
        linear(pool, sel_in_.data(), S, d, *L.q, L.qb, p, q_.data());
        attend_read_rows(T, nh, nh, hd, /*causal=*/true, q_.data(), k_.data(), v_.data(), attn_.data());
        finish_layer(pool, L, S, sel_x_.data(), p);
      } else {
        const LinearOutput qkv[3] = {{L.q, L.qb, q_.data()}, {L.k, L.kb, k_.data()}, {L.v, L.vb, v_.data()}};
        linear_shared_input(pool, attn_in, R, d, qkv, 3, p);
        attend_rows(pool, B, T, nh, nh, hd, true, q_.data(), k_.data(), v_.data(), cache, l, attn_.data());
        finish_layer(pool, L, R, x_.data(), p);
      }
    }
    if (cache) cache->length = static_cast<int>(past + T);
    const size_t n = selected ? S : R;
    const float* out = selected ? sel_x_.data() : x_.data();
    if (final_w_) {
      layer_norm(pool, out, n, d, *final_w_, final_b_, c.norm_eps, p, xn_.data());
      out = xn_.data();
    }
    if (project_out_) {
      linear(pool, out, n, d, *project_out_, nullptr, p, tmp_.data());
      out = tmp_.data();
    }
    if (selected) {
      scatter_read_rows(batch, out, e, hidden);
      return Status::ok();
    }
    scatter_rows(batch, out, e, hidden);
    return Status::ok();
  }

 private:
  struct Layer;
  // Layer L after attention on n rows (every row, or the read rows of the last layer): the output
  // projection and the MLP, each added to xs (the rows' residual stream) with its layer norm before or
  // after; attn_ holds the rows' attention output.
  void finish_layer(ThreadPool* pool, const Layer& L, size_t n, float* xs, const Perturbation& p) {
    const ModelConfig& c = config_;
    const size_t d = c.hidden_size, ff = c.intermediate_size;
    const bool pre = c.do_layer_norm_before;
    add_linear(pool, attn_.data(), n, d, *L.o, L.ob, p, xs);
    if (!pre) layer_norm(pool, xs, n, d, *L.ln1_w, L.ln1_b, c.norm_eps, p, xs);  // in place, row by row
    if (pre) layer_norm(pool, xs, n, d, *L.ln2_w, L.ln2_b, c.norm_eps, p, xn_.data());
    linear(pool, pre ? xn_.data() : xs, n, d, *L.fc1, L.fc1_b, p, h_.data());
    relu(pool, h_.data(), n * ff);
    add_linear(pool, h_.data(), n, ff, *L.fc2, L.fc2_b, p, xs);
    if (!pre) layer_norm(pool, xs, n, d, *L.ln2_w, L.ln2_b, c.norm_eps, p, xs);
  }

 protected:
  const Weight& head_weight() const override { return *head_; }
  size_t head_input_dim() const override {
    return static_cast<size_t>(config_.word_embed_proj_dim > 0 ? config_.word_embed_proj_dim : config_.hidden_size);
  }

 private:
  struct Layer {
    const Weight *q, *qb, *k, *kb, *v, *vb, *o, *ob, *ln1_w, *ln1_b, *fc1, *fc1_b, *fc2, *fc2_b, *ln2_w, *ln2_b;
  };
  const Weight *embed_ = nullptr, *pos_ = nullptr, *project_in_ = nullptr, *project_out_ = nullptr;
  const Weight *final_w_ = nullptr, *final_b_ = nullptr, *head_ = nullptr;
  std::vector<Layer> layers_;
};


Result<ModelConfig> parse_opt_config(const nlohmann::json& j, ModelConfig c, const std::string& where) {
  using namespace arch_config;
  POCKETLLM_RETURN_IF_ERROR(read_fields(j, &c, {required("vocab_size", &ModelConfig::vocab_size), required("hidden_size", &ModelConfig::hidden_size),
                                                required("ffn_dim", &ModelConfig::intermediate_size),
                                                required("num_hidden_layers", &ModelConfig::num_layers),
                                                required("num_attention_heads", &ModelConfig::num_heads),
                                                required("max_position_embeddings", &ModelConfig::max_position_embeddings)}, where));
  c.word_embed_proj_dim = c.hidden_size;
  POCKETLLM_RETURN_IF_ERROR(read_fields(j, &c, {optional("word_embed_proj_dim", &ModelConfig::word_embed_proj_dim)}, where));
  c.do_layer_norm_before = j.value("do_layer_norm_before", true);
  c.activation = j.value("activation_function", "relu");
  if (c.activation != "relu") return unsupported(where + ": OPT activation '" + c.activation + "' (supported: relu)");
  if (!j.value("enable_bias", true) || !j.value("layer_norm_elementwise_affine", true))
    return unsupported(where + ": OPT without biases or affine layer norms");
  c.norm_eps = 1e-5f;
  c.position_offset = 2;
  c.tie_word_embeddings = j.value("tie_word_embeddings", true);
  POCKETLLM_RETURN_IF_ERROR(finish(j, &c, where));
  return c;
}

// OPTForCausalLM names; an OPTModel checkpoint starts at "decoder.".
bool opt_canonical_name(const std::string& n, std::string* out) {
  *out = n.rfind("decoder.", 0) == 0 ? "model." + n : n;
  return true;
}

// A stored copy of the tied head: keep one canonical tensor.
void opt_resolve_ties(ModelConfig* c, const WeightStore& ws) {
  if (ws.find("lm_head.weight") != nullptr) c->tie_word_embeddings = true;
}

nlohmann::json opt_write_config(const ModelConfig& c) {
  nlohmann::json j = {{"architectures", {"OPTForCausalLM"}}, {"model_type", "opt"}, {"vocab_size", c.vocab_size},
                      {"hidden_size", c.hidden_size}, {"ffn_dim", c.intermediate_size}, {"num_hidden_layers", c.num_layers},
                      {"num_attention_heads", c.num_heads}, {"max_position_embeddings", c.max_position_embeddings},
                      {"word_embed_proj_dim", c.word_embed_proj_dim > 0 ? c.word_embed_proj_dim : c.hidden_size},
                      {"do_layer_norm_before", c.do_layer_norm_before}, {"activation_function", "relu"}};
  if (c.pad_token_id >= 0) j["pad_token_id"] = c.pad_token_id;
  return j;
}

}  // namespace

extern const ArchitectureSpec kOptArchitecture = {Architecture::kOpt, "opt", {"opt"}, "OPTForCausalLM", parse_opt_config, opt_canonical_name,
                                                  opt_resolve_ties, opt_write_config, create_transformer<OptModel>};

}  // namespace pocketllm
