// Shared pieces of every architecture: the output head (logits, streamed token loss, label-word loss)
// and the batch bookkeeping. An architecture implements forward_hidden() and names its head tensors.
#pragma once

#include "kernels_quant_packed.h"
#include "pocketllm/client/model.h"

namespace pocketllm {

// Attention of a batch's new tokens (q, k, v: [B * T, heads * head_dim] / [B * T, kv_heads * head_dim]).
// Without a cache the keys are the batch itself (key_len = each sequence's length). With a cache, the
// new keys/values are stored at positions cache->length … and the queries attend over the cache.
// The caller advances cache->length once all layers are done.
void attend(ThreadPool* pool, size_t batch, size_t tokens, size_t heads, size_t kv_heads, size_t head_dim, bool causal,
            const float* q, const float* k, const float* v, KVCache* cache, size_t layer, const int32_t* key_len,
            float* out, float scale = 0.0f, size_t window = 0);

class TransformerModel : public LanguageModel {
 public:
  TransformerModel() = default;
  TransformerModel(const TransformerModel&) = delete;  // store_ may point at weights_
  TransformerModel& operator=(const TransformerModel&) = delete;
  // Takes the config and the canonical weights and binds the tensors the architecture needs.
  Status init(ModelConfig config, WeightStore weights) {
    config_ = std::move(config);
    weights_ = std::move(weights);
    return bind();
  }
  const ModelConfig& config() const override { return config_; }
  WeightStore& weights() override { return *store_; }
  const WeightStore& weights() const override { return *store_; }
  // The same architecture bound to this model's WeightStore (an empty store of its own).
  Result<std::unique_ptr<LanguageModel>> twin() override;

  void logits(ThreadPool* pool, const float* hidden, const std::vector<int>& rows, const Perturbation& p,
              std::vector<float>* out) override;
  // Logits of the first `count` gathered rows against head rows [r0, r0 + n), bias included.
  void head_tile(size_t count, size_t r0, size_t n, const Perturbation& p, float* y, size_t ldy, float* bias_scratch);
  Result<LossResult> token_loss(ThreadPool* pool, const TokenBatch& batch, const std::vector<int32_t>& targets,
                                const Perturbation& p) override;
  Result<LossResult> choice_loss(ThreadPool* pool, const TokenBatch& batch, const std::vector<ChoiceTarget>& targets,
                                 const std::vector<int32_t>& candidates, const Perturbation& p,
                                 std::vector<float>* candidate_logits) override;

 protected:
  // Finds every tensor of config_ in weights() (require()), with the right shapes.
  virtual Status bind() = 0;
  // A default-constructed model of the same class (twin() configures and binds it).
  virtual std::unique_ptr<TransformerModel> blank() const = 0;
  // The [vocab, hidden] output projection (the embedding matrix when tied) and its optional bias.
  virtual const Weight& head_weight() const = 0;
  virtual const Weight* head_bias() const { return nullptr; }
  // Width of the hidden states the head reads (OPT's project_out makes it differ from hidden_size).
  virtual size_t head_input_dim() const { return static_cast<size_t>(config_.hidden_size); }
  // Sizes the activation buffers below for `rows` token rows of width `width` and MLP width `ff`
  // (grown only: after the first call at a size, a forward pass allocates nothing).
  void size_activations(size_t rows, size_t width, size_t ff) {
    for (std::vector<float>* v : {&x_, &xn_, &q_, &k_, &v_, &attn_, &tmp_}) v->resize(rows * width);
    h_.resize(rows * ff);
  }
  // The rows a forward pass runs on. Without a KV cache (unpadded) only the real tokens: sequence b's rows
  // are [seq_start_[b], seq_start_[b] + lengths[b]), so a batch padded to its longest sequence costs what
  // its tokens cost; with a cache every sequence has T rows. Fills seq_start_ and row_token_ (the index
  // b * T + t of each row's token) and returns the number of rows.
  size_t lay_out_rows(const TokenBatch& batch, bool unpadded);
  // hidden [B * T, width] from the laid-out rows (padded rows zero).
  void scatter_rows(const TokenBatch& batch, const float* rows, size_t width, std::vector<float>* hidden) const;
  // Attention over the laid-out rows: the unpadded layout, or the cache when there is one.
  // `scale` and `window` as AttentionShape's (0: the defaults). Without a cache, `first_seq` > 0 runs the
  // B sequences from that one (their rows where lay_out_rows put them; q, k, v, out stay the whole pass's).
  void attend_rows(ThreadPool* pool, size_t B, size_t T, size_t heads, size_t kv_heads, size_t hd, bool causal, const float* q,
                   const float* k, const float* v, KVCache* cache, size_t layer, float* out, float scale = 0.0f,
                   size_t window = 0, size_t first_seq = 0);
  // Classification's last layer for the read tokens alone: this pass reads only read_tokens_ (set, no
  // cache, no more of them than rows), so an architecture may run its last layer on those rows only.
  bool reads_selected(const KVCache* cache, size_t R) const {
    return cache == nullptr && !read_tokens_.empty() && read_tokens_.size() <= R;
  }
  // The read tokens' rows of the laid-out `rows` [R, width], in read_tokens_ order, into out [S, width].
  void gather_read_rows(const float* rows, size_t width, size_t T, std::vector<float>* out) const;
  // Attention of the read tokens' queries q [S, heads * hd] over the keys of their own sequences (up to
  // themselves when causal); k, v are the whole pass's laid-out rows; out [S, heads * hd].
  void attend_read_rows(size_t T, size_t heads, size_t kv_heads, size_t hd, bool causal, const float* q, const float* k,
                        const float* v, float* out, float scale = 0.0f, size_t window = 0) const;
  // hidden [B * T, width]: the read tokens' rows from rows [S, width], every other row 0.
  void scatter_read_rows(const TokenBatch& batch, const float* rows, size_t width, std::vector<float>* hidden) const;
  // xs [n, d] += in [n, k] · Wᵀ + b (a projection into the residual stream) through tmp_; W in the engine's
  // out × in layout, or in × out (GPT-2's Conv1D) when in_out.
  void add_linear(ThreadPool* pool, const float* in, size_t n, size_t k, const Weight& w, const Weight* b, const Perturbation& p,
                  float* xs, bool in_out = false);
  // The start of a decoder pass: checks the batch against the vocabulary, room for its tokens in the
  // cache and in `learned_positions` (0: no limit), and fills key_len_ (past + T with a cache, each
  // sequence's length without). Returns `past`, the tokens already in the cache.
  Result<size_t> begin_decoder_pass(const TokenBatch& batch, KVCache* cache, size_t learned_positions);
  // head_tile's float GEMM path for all `count` rows packed in packed_f32_, a row block at a time:
  // fn(i0, rows, logits) gets rows [i0, i0 + rows) of the tile (row stride n, bias included).
  template <class Fn>
  void head_tile_in_blocks(size_t count, size_t r0, size_t n, const Perturbation& p, Fn&& fn);
  // Packs or quantizes the `count` rows of gathered_ for the head's kernel path (before its tiles run).
  void prepare_head_input(ThreadPool* pool, size_t count, const Perturbation& p);
  // Binds a required tensor, with the error naming it and the expected shape.
  Status require(const std::string& name, std::vector<int64_t> shape, const Weight** out) const;

  ModelConfig config_;
  WeightStore weights_;
  WeightStore* store_ = &weights_;  // the tensors bound: weights_, or the original's for a twin
  // Buffers reused across calls: after the first call at a given size, losses allocate nothing.
  std::vector<float> hidden_;
  std::vector<float> gathered_;
  PackedActivations packed_x_;  // gathered_ quantized for a packed head
  float* packed_f32_ = nullptr;    // gathered_ packed for the float GEMM path (kernels_gemm.h), in thread scratch
  size_t packed_f32_rows_ = 0;     // rows packed_f32_ holds (0: head tiles take the other paths)
  std::vector<int> loss_rows_;
  std::vector<int32_t> loss_targets_;
  std::vector<float> chunk_max_, chunk_sum_, target_logit_;
  std::vector<float> cand_w_, cand_b_, cand_logits_, row_buf_, bias_buf_;
  std::vector<float> embed_row_a_, embed_row_b_;  // architectures' per-row scratch
  // Activations of the encoder/decoder stacks (size_activations): residual stream, normalised input,
  // q/k/v, attention output, MLP hidden, scratch.
  std::vector<float> x_, xn_, q_, k_, v_, attn_, h_, tmp_;
  std::vector<int32_t> key_len_;  // per sequence: the keys attention reads
  std::vector<size_t> seq_start_;  // per sequence: its first activation row (lay_out_rows)
  // Set by choice_loss for one pass (else empty): the only tokens (b * T + t) whose hidden states will be
  // read. An architecture may run its last layer for those rows alone; the other rows of `hidden` are 0.
  std::vector<size_t> read_tokens_;
  std::vector<size_t> row_token_;  // per activation row: its token's index b * T + t
  std::vector<float> sel_x_, sel_in_;  // the read rows' residual stream and layer input (last layer)
  size_t last_layer_rows_ = 0;         // rows the last pass ran its final layer on

 public:
  // Rows the last forward pass ran its final layer on: every laid-out row, or only the read tokens'.
  size_t last_layer_rows() const { return last_layer_rows_; }
};

}  // namespace pocketllm
