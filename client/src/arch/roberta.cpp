#include <algorithm>
#include <cmath>

#include "arch/architecture.h"

#include "pocketllm/common/cancel.h"
#include "pocketllm/client/architectures.h"
#include "transformer_base.h"
#include "kernels.h"

namespace pocketllm {
namespace {

class RobertaModel : public TransformerModel {
 public:
  bool is_causal() const override { return false; }

 private:
  std::unique_ptr<TransformerModel> blank() const override { return std::make_unique<RobertaModel>(); }
  Status bind() override {
    const ModelConfig& c = config_;
    const int64_t d = c.hidden_size, ff = c.intermediate_size, V = c.vocab_size;
    const int64_t P = c.max_position_embeddings;
    POCKETLLM_RETURN_IF_ERROR(require("roberta.embeddings.word_embeddings.weight", {V, d}, &word_));
    POCKETLLM_RETURN_IF_ERROR(require("roberta.embeddings.position_embeddings.weight", {P, d}, &pos_));
    POCKETLLM_RETURN_IF_ERROR(require("roberta.embeddings.token_type_embeddings.weight", {c.type_vocab_size, d}, &type_));
    POCKETLLM_RETURN_IF_ERROR(require("roberta.embeddings.LayerNorm.weight", {d}, &emb_ln_w_));
    POCKETLLM_RETURN_IF_ERROR(require("roberta.embeddings.LayerNorm.bias", {d}, &emb_ln_b_));
    POCKETLLM_RETURN_IF_ERROR(require("lm_head.dense.weight", {d, d}, &head_dense_));
    POCKETLLM_RETURN_IF_ERROR(require("lm_head.dense.bias", {d}, &head_dense_b_));
    POCKETLLM_RETURN_IF_ERROR(require("lm_head.layer_norm.weight", {d}, &head_ln_w_));
    POCKETLLM_RETURN_IF_ERROR(require("lm_head.layer_norm.bias", {d}, &head_ln_b_));
    POCKETLLM_RETURN_IF_ERROR(require("lm_head.bias", {V}, &head_bias_));
    layers_.resize(static_cast<size_t>(c.num_layers));
    for (int l = 0; l < c.num_layers; ++l) {
      const std::string p = "roberta.encoder.layer." + std::to_string(l) + ".";
      Layer& L = layers_[l];
      for (auto [name, w, b, rows, cols] :
           {std::make_tuple("attention.self.query", &L.q, &L.qb, d, d), std::make_tuple("attention.self.key", &L.k, &L.kb, d, d),
            std::make_tuple("attention.self.value", &L.v, &L.vb, d, d),
            std::make_tuple("attention.output.dense", &L.o, &L.ob, d, d),
            std::make_tuple("intermediate.dense", &L.fc1, &L.fc1_b, ff, d), std::make_tuple("output.dense", &L.fc2, &L.fc2_b, d, ff)}) {
        POCKETLLM_RETURN_IF_ERROR(require(p + name + ".weight", {rows, cols}, w));
        POCKETLLM_RETURN_IF_ERROR(require(p + name + ".bias", {rows}, b));
      }
      POCKETLLM_RETURN_IF_ERROR(require(p + "attention.output.LayerNorm.weight", {d}, &L.ln1_w));
      POCKETLLM_RETURN_IF_ERROR(require(p + "attention.output.LayerNorm.bias", {d}, &L.ln1_b));
      POCKETLLM_RETURN_IF_ERROR(require(p + "output.LayerNorm.weight", {d}, &L.ln2_w));
      POCKETLLM_RETURN_IF_ERROR(require(p + "output.LayerNorm.bias", {d}, &L.ln2_b));
    }
    return Status::ok();
  }

 public:
  Status forward_hidden(ThreadPool* pool, const TokenBatch& batch, const Perturbation& p, KVCache* cache,
                        std::vector<float>* hidden) override {
    const ModelConfig& c = config_;
    if (cache) return unsupported("RoBERTa is an encoder: no incremental decoding");
    POCKETLLM_RETURN_IF_ERROR(batch.validate(c.vocab_size));
    const size_t B = batch.batch, T = batch.seq_len, d = c.hidden_size, ff = c.intermediate_size;
    if (T + c.position_offset > static_cast<size_t>(c.max_position_embeddings))
      return out_of_range("sequence of " + std::to_string(T) + " tokens exceeds RoBERTa's " +
                          std::to_string(c.max_position_embeddings - c.position_offset) + " positions");
    const size_t R = lay_out_rows(batch, /*unpadded=*/true);  // padded positions are not computed
    size_activations(R, d, ff);
    key_len_.assign(batch.lengths.begin(), batch.lengths.end());
    std::vector<float>& prow = embed_row_a_;
    std::vector<float>& trow = embed_row_b_;
    prow.resize(d);
    trow.resize(d);
    const float* type0 = weight_rows(*type_, 0, 1, p, trow.data());
    for (size_t r = 0; r < R; ++r) {
      // Real tokens count positions from padding_idx + 1.
      const size_t position = row_token_[r] % T + c.position_offset;
      const float* e = weight_rows(*word_, static_cast<size_t>(batch.tokens[row_token_[r]]), 1, p, tmp_.data());
      const float* pe = weight_rows(*pos_, position, 1, p, prow.data());
      for (size_t i = 0; i < d; ++i) xn_[r * d + i] = e[i] + pe[i] + type0[i];
    }
    layer_norm(pool, xn_.data(), R, d, *emb_ln_w_, emb_ln_b_, c.norm_eps, p, x_.data());
    const bool selected = reads_selected(nullptr, R);  // classification: the last layer for the read rows
    const size_t S = read_tokens_.size();
    last_layer_rows_ = selected ? S : R;
    for (size_t l = 0; l < layers_.size(); ++l) {
      const Layer& L = layers_[l];
      throw_if_cancelled();  // between layers: a cancelled pass leaves nothing half-written
      if (selected && l + 1 == layers_.size()) {  // keys and values of every row, the rest for the read rows
        const LinearOutput kv[2] = {{L.k, L.kb, k_.data()}, {L.v, L.vb, v_.data()}};
        linear_shared_input(pool, x_.data(), R, d, kv, 2, p);
        gather_read_rows(x_.data(), d, T, &sel_x_);
        linear(pool, sel_x_.data(), S, d, *L.q, L.qb, p, q_.data());
        attend_read_rows(T, c.num_heads, c.num_heads, c.head_dim, /*causal=*/false, q_.data(), k_.data(), v_.data(),
                         attn_.data());
        finish_layer(pool, L, S, sel_x_.data(), p);
      } else {
        const LinearOutput qkv[3] = {{L.q, L.qb, q_.data()}, {L.k, L.kb, k_.data()}, {L.v, L.vb, v_.data()}};
        linear_shared_input(pool, x_.data(), R, d, qkv, 3, p);
        attend_rows(pool, B, T, c.num_heads, c.num_heads, c.head_dim, /*causal=*/false, q_.data(), k_.data(), v_.data(), nullptr,
                    l, attn_.data());
        finish_layer(pool, L, R, x_.data(), p);
      }
    }
    // Masked-LM head transform: dense, GELU, LayerNorm; the decoder is the tied embedding + bias.
    const size_t n = selected ? S : R;
    linear(pool, selected ? sel_x_.data() : x_.data(), n, d, *head_dense_, head_dense_b_, p, tmp_.data());
    gelu_erf(pool, tmp_.data(), n * d);
    layer_norm(pool, tmp_.data(), n, d, *head_ln_w_, head_ln_b_, c.norm_eps, p, xn_.data());
    if (selected) {
      scatter_read_rows(batch, xn_.data(), d, hidden);
      return Status::ok();
    }
    scatter_rows(batch, xn_.data(), d, hidden);
    return Status::ok();
  }

 private:
  struct Layer;
  // Layer L after attention on n rows (every row, or the read rows of the last layer), post-LN: the output
  // projection added to xs (the rows' hidden states, the layer's input, replaced by its output) and
  // normalised, then the MLP the same way; attn_ holds the rows' attention output.
  void finish_layer(ThreadPool* pool, const Layer& L, size_t n, float* xs, const Perturbation& p) {
    const ModelConfig& c = config_;
    const size_t d = c.hidden_size, ff = c.intermediate_size;
    add_linear(pool, attn_.data(), n, d, *L.o, L.ob, p, xs);
    layer_norm(pool, xs, n, d, *L.ln1_w, L.ln1_b, c.norm_eps, p, xs);  // in place, row by row
    linear(pool, xs, n, d, *L.fc1, L.fc1_b, p, h_.data());
    gelu_erf(pool, h_.data(), n * ff);
    add_linear(pool, h_.data(), n, ff, *L.fc2, L.fc2_b, p, xs);
    layer_norm(pool, xs, n, d, *L.ln2_w, L.ln2_b, c.norm_eps, p, xs);
  }

 protected:
  const Weight& head_weight() const override { return *word_; }
  const Weight* head_bias() const override { return head_bias_; }

 private:
  struct Layer {
    const Weight *q, *qb, *k, *kb, *v, *vb, *o, *ob, *ln1_w, *ln1_b, *fc1, *fc1_b, *fc2, *fc2_b, *ln2_w, *ln2_b;
  };
  const Weight *word_ = nullptr, *pos_ = nullptr, *type_ = nullptr, *emb_ln_w_ = nullptr, *emb_ln_b_ = nullptr;
  const Weight *head_dense_ = nullptr, *head_dense_b_ = nullptr, *head_ln_w_ = nullptr, *head_ln_b_ = nullptr,
               *head_bias_ = nullptr;
  std::vector<Layer> layers_;
};


Result<ModelConfig> parse_roberta_config(const nlohmann::json& j, ModelConfig c, const std::string& where) {
  using namespace arch_config;
  c.type_vocab_size = 1;
  c.norm_eps = 1e-5f;
  POCKETLLM_RETURN_IF_ERROR(read_fields(j, &c, {required("vocab_size", &ModelConfig::vocab_size), required("hidden_size", &ModelConfig::hidden_size),
                                                required("intermediate_size", &ModelConfig::intermediate_size),
                                                required("num_hidden_layers", &ModelConfig::num_layers),
                                                required("num_attention_heads", &ModelConfig::num_heads),
                                                required("max_position_embeddings", &ModelConfig::max_position_embeddings),
                                                optional("type_vocab_size", &ModelConfig::type_vocab_size),
                                                optional("layer_norm_eps", &ModelConfig::norm_eps)}, where));
  c.activation = j.value("hidden_act", "gelu");
  if (c.activation != "gelu") return unsupported(where + ": RoBERTa activation '" + c.activation + "' (supported: gelu)");
  c.pad_token_id = 1;
  c.tie_word_embeddings = true;
  POCKETLLM_RETURN_IF_ERROR(finish(j, &c, where));
  c.position_offset = c.pad_token_id + 1;
  if (c.type_vocab_size < 1) return corrupt(where + ": type_vocab_size must be at least 1");
  return c;
}

// RobertaForMaskedLM names; a RobertaModel checkpoint lacks "roberta."; the decoder is tied.
bool roberta_canonical_name(const std::string& n, std::string* out) {
  *out = (n.rfind("embeddings.", 0) == 0 || n.rfind("encoder.", 0) == 0) ? "roberta." + n : n;
  if (*out == "lm_head.decoder.bias") return false;    // the same parameter as lm_head.bias
  if (*out == "lm_head.decoder.weight") return false;  // tied to the word embeddings
  return true;
}

nlohmann::json roberta_write_config(const ModelConfig& c) {
  return {{"architectures", {"RobertaForMaskedLM"}}, {"model_type", "roberta"}, {"vocab_size", c.vocab_size},
          {"hidden_size", c.hidden_size}, {"intermediate_size", c.intermediate_size},
          {"num_hidden_layers", c.num_layers}, {"num_attention_heads", c.num_heads},
          {"max_position_embeddings", c.max_position_embeddings}, {"type_vocab_size", c.type_vocab_size},
          {"layer_norm_eps", c.norm_eps}, {"hidden_act", "gelu"}, {"pad_token_id", c.pad_token_id}};
}

}  // namespace

extern const ArchitectureSpec kRobertaArchitecture = {Architecture::kRoberta, "roberta", {"roberta"}, "RobertaForMaskedLM", parse_roberta_config,
                                                      roberta_canonical_name, nullptr, roberta_write_config, create_transformer<RobertaModel>};

}  // namespace pocketllm
