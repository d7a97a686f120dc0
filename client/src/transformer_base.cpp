#include "transformer_base.h"

#include "kernels_quant.h"
#include "kernels_quant_packed.h"

#include "kernels.h"
#include "kernels_gemm.h"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>

namespace pocketllm {
namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMat = Eigen::Map<const RowMat>;
using Mat = Eigen::Map<RowMat>;

constexpr size_t kVocabTile = 128;
constexpr size_t kLogitBlockFloats = size_t{6} << 10;  // token_loss: logits of a row block (24 KiB)
constexpr size_t kLossChunks = 16;  // token_loss: vocabulary chunks folded in parallel (enough for 16 threads)

// y[i, j] += b[j] for i < rows, j < n (row stride ldy): the head's bias on a tile of logits.
void add_bias_rows(const float* b, size_t rows, size_t n, float* y, size_t ldy) {
  for (size_t i = 0; i < rows; ++i)
    for (size_t j = 0; j < n; ++j) y[i * ldy + j] += b[j];
}

// The head's two scratch buffers (weight tiles, logits) in thread_scratch slots 4 and 5.
inline float* head_scratch(size_t floats, int which) { return thread_scratch(floats, 4 + which); }


}  // namespace

Status TokenBatch::validate(int vocab_size) const {
  if (batch <= 0 || seq_len <= 0) return invalid_argument("empty token batch");
  if (tokens.size() != static_cast<size_t>(batch) * static_cast<size_t>(seq_len))
    return invalid_argument("token batch: " + std::to_string(tokens.size()) + " tokens for " + std::to_string(batch) +
                            " x " + std::to_string(seq_len));
  if (lengths.size() != static_cast<size_t>(batch)) return invalid_argument("token batch: lengths do not match batch");
  for (int b = 0; b < batch; ++b) {
    if (lengths[b] < 1 || lengths[b] > seq_len)
      return invalid_argument("token batch: sequence " + std::to_string(b) + " has length " + std::to_string(lengths[b]));
    for (int t = 0; t < lengths[b]; ++t) {
      const int32_t id = tokens[static_cast<size_t>(b) * seq_len + t];
      if (id < 0 || id >= vocab_size)
        return invalid_argument("token batch: token id " + std::to_string(id) + " at sequence " + std::to_string(b) +
                                ", position " + std::to_string(t) + " is outside the vocabulary of " +
                                std::to_string(vocab_size));
    }
  }
  return Status::ok();
}

TokenBatch TokenBatch::from_sequences(const std::vector<std::vector<int32_t>>& seqs, int32_t pad_id) {
  TokenBatch b;
  b.assign(seqs.size(), [&](size_t i) -> const std::vector<int32_t>& { return seqs[i]; }, pad_id);
  return b;
}

namespace {

// Makes room in a sliding layer's buffer for `T` positions after `past`: keeps the keys from the first
// position the next query can see (past + 1 - window) on, moved to slot 0 (in place); grows the buffer
// when those and the T new ones do not fit.
void make_room(KVCache* cache, size_t layer, size_t kvd, size_t past, size_t T, size_t window) {
  size_t& first = cache->first[layer];
  size_t& slots = cache->slots[layer];
  if (past - first + T <= slots) return;
  const size_t keep_from = std::max(first, past + 1 > window ? past + 1 - window : size_t{0});
  const size_t kept = past - keep_from, B = static_cast<size_t>(cache->batch);
  const size_t grown = std::max(slots, kept + T);
  for (std::vector<float>* buf : {&cache->k[layer], &cache->v[layer]}) {
    if (grown > slots) buf->resize(B * grown * kvd);
    // Sequence b moves from b * slots to b * grown, never past a later sequence's keys: going down the
    // batch when the stride grows, up it when it does not (dest <= source then).
    for (size_t i = 0; i < B; ++i) {
      const size_t b = grown > slots ? B - 1 - i : i;
      const auto from = buf->begin() + static_cast<std::ptrdiff_t>((b * slots + keep_from - first) * kvd);
      const auto to = buf->begin() + static_cast<std::ptrdiff_t>(b * grown * kvd);
      if (to <= from) std::copy(from, from + static_cast<std::ptrdiff_t>(kept * kvd), to);
      else std::copy_backward(from, from + static_cast<std::ptrdiff_t>(kept * kvd), to + static_cast<std::ptrdiff_t>(kept * kvd));
    }
  }
  first = keep_from;
  slots = grown;
}

}  // namespace

void attend(ThreadPool* pool, size_t B, size_t T, size_t heads, size_t kv_heads, size_t hd, bool causal, const float* q,
            const float* k, const float* v, KVCache* cache, size_t layer, const int32_t* key_len, float* out, float scale,
            size_t window) {
  AttentionShape s{B, T, /*tk=*/0, heads, kv_heads, hd, /*past=*/0, causal};
  s.scale = scale;
  s.window = window;
  if (cache == nullptr) {
    s.tk = T;
    attention(pool, s, q, k, v, key_len, out);
    return;
  }
  const size_t kvd = kv_heads * hd, past = static_cast<size_t>(cache->length);
  if (window > 0 && causal) make_room(cache, layer, kvd, past, T, window);
  const size_t slots = cache->slots[layer], offset = past - cache->first[layer];
  for (size_t b = 0; b < B; ++b)
    for (size_t t = 0; t < T; ++t) {
      const auto at = static_cast<std::ptrdiff_t>((b * slots + offset + t) * kvd);
      std::copy_n(k + (b * T + t) * kvd, kvd, cache->k[layer].begin() + at);
      std::copy_n(v + (b * T + t) * kvd, kvd, cache->v[layer].begin() + at);
    }
  s.tk = slots;
  s.past = offset;  // positions are relative to slot 0: the window and the causal mask see differences only
  std::vector<int32_t> local(B);
  for (size_t b = 0; b < B; ++b) local[b] = key_len[b] - static_cast<int32_t>(cache->first[layer]);
  attention(pool, s, q, cache->k[layer].data(), cache->v[layer].data(), local.data(), out);
}

Result<std::unique_ptr<LanguageModel>> LanguageModel::twin() {
  return unsupported("this model has no twin (concurrent forward passes over shared weights)");
}

KVCache LanguageModel::make_cache(int batch, int capacity) const {
  const ModelConfig& c = config();
  KVCache cache;
  cache.batch = batch;
  cache.capacity = capacity;
  const size_t L = static_cast<size_t>(c.num_layers);
  cache.k.resize(L);
  cache.v.resize(L);
  cache.first.assign(L, 0);
  cache.slots.assign(L, static_cast<size_t>(capacity));
  for (size_t l = 0; l < L; ++l) {
    // A sliding layer starts with room for its window and up to 64 new tokens before the keys move.
    if (c.sliding_window > 0 && l < c.sliding_layers.size() && c.sliding_layers[l]) {
      const size_t w = static_cast<size_t>(c.sliding_window);
      cache.slots[l] = std::min(cache.slots[l], w + std::min<size_t>(w, 64));
    }
    const size_t per_layer = static_cast<size_t>(batch) * cache.slots[l] * c.num_kv_heads * c.head_dim;
    cache.k[l].assign(per_layer, 0.0f);
    cache.v[l].assign(per_layer, 0.0f);
  }
  return cache;
}

size_t TransformerModel::lay_out_rows(const TokenBatch& batch, bool unpadded) {
  const size_t B = static_cast<size_t>(batch.batch), T = static_cast<size_t>(batch.seq_len);
  seq_start_.resize(B);
  row_token_.clear();
  for (size_t b = 0; b < B; ++b) {
    seq_start_[b] = row_token_.size();
    const size_t len = unpadded ? static_cast<size_t>(batch.lengths[b]) : T;
    for (size_t t = 0; t < len; ++t) row_token_.push_back(b * T + t);
  }
  return row_token_.size();
}

void TransformerModel::scatter_rows(const TokenBatch& batch, const float* rows, size_t width, std::vector<float>* hidden) const {
  const size_t M = static_cast<size_t>(batch.batch) * static_cast<size_t>(batch.seq_len);
  if (row_token_.size() == M) {  // every position is a row: the layouts agree
    hidden->assign(rows, rows + M * width);
    return;
  }
  hidden->assign(M * width, 0.0f);
  for (size_t r = 0; r < row_token_.size(); ++r) std::copy_n(rows + r * width, width, hidden->data() + row_token_[r] * width);
}

void TransformerModel::add_linear(ThreadPool* pool, const float* in, size_t n, size_t k, const Weight& w, const Weight* b,
                                  const Perturbation& p, float* xs, bool in_out) {
  const size_t d = in_out ? w.cols() : w.rows();
  if (in_out) linear_in_out(pool, in, n, k, w, b, p, tmp_.data());
  else linear(pool, in, n, k, w, b, p, tmp_.data());
  for (size_t i = 0; i < n * d; ++i) xs[i] += tmp_[i];
}

void TransformerModel::gather_read_rows(const float* rows, size_t width, size_t T, std::vector<float>* out) const {
  out->resize(read_tokens_.size() * width);
  for (size_t i = 0; i < read_tokens_.size(); ++i) {
    const size_t b = read_tokens_[i] / T, t = read_tokens_[i] % T;
    std::copy_n(rows + (seq_start_[b] + t) * width, width, out->data() + i * width);
  }
}

void TransformerModel::attend_read_rows(size_t T, size_t heads, size_t kv_heads, size_t hd, bool causal, const float* q,
                                        const float* k, const float* v, float* out, float scale, size_t window) const {
  const size_t qd = heads * hd, kvd = kv_heads * hd;
  for (size_t i = 0; i < read_tokens_.size(); ++i) {  // one query against its sequence's keys
    const size_t b = read_tokens_[i] / T, t = read_tokens_[i] % T;
    AttentionShape s{1, 1, static_cast<size_t>(key_len_[b]), heads, kv_heads, hd, /*past=*/t, causal};
    s.scale = scale;
    s.window = window;
    attention(nullptr, s, q + i * qd, k + seq_start_[b] * kvd, v + seq_start_[b] * kvd, &key_len_[b], out + i * qd);
  }
}

void TransformerModel::scatter_read_rows(const TokenBatch& batch, const float* rows, size_t width,
                                         std::vector<float>* hidden) const {
  hidden->assign(static_cast<size_t>(batch.batch) * static_cast<size_t>(batch.seq_len) * width, 0.0f);
  for (size_t i = 0; i < read_tokens_.size(); ++i) std::copy_n(rows + i * width, width, hidden->data() + read_tokens_[i] * width);
}

void TransformerModel::attend_rows(ThreadPool* pool, size_t B, size_t T, size_t heads, size_t kv_heads, size_t hd, bool causal,
                                   const float* q, const float* k, const float* v, KVCache* cache, size_t layer, float* out,
                                   float scale, size_t window, size_t first_seq) {
  if (cache != nullptr) {
    attend(pool, B, T, heads, kv_heads, hd, causal, q, k, v, cache, layer, key_len_.data(), out, scale, window);
    return;
  }
  AttentionShape s{B, T, T, heads, kv_heads, hd, /*past=*/0, causal, seq_start_.data() + first_seq, scale, window};
  attention(pool, s, q, k, v, key_len_.data() + first_seq, out);
}

Result<size_t> TransformerModel::begin_decoder_pass(const TokenBatch& batch, KVCache* cache, size_t learned_positions) {
  POCKETLLM_RETURN_IF_ERROR(batch.validate(config_.vocab_size));
  const size_t B = batch.batch, T = batch.seq_len;
  size_t past = 0;
  if (cache) {
    past = static_cast<size_t>(cache->length);
    if (past + T > static_cast<size_t>(cache->capacity)) return out_of_range("KV cache is full");
  }
  if (learned_positions > 0 && past + T > learned_positions)
    return out_of_range("sequence of " + std::to_string(past + T) + " tokens exceeds the " + std::to_string(learned_positions) +
                        " learned positions");
  key_len_.resize(B);
  for (size_t b = 0; b < B; ++b) key_len_[b] = static_cast<int32_t>(cache ? past + T : static_cast<size_t>(batch.lengths[b]));
  return past;
}

Result<std::unique_ptr<LanguageModel>> TransformerModel::twin() {
  std::unique_ptr<TransformerModel> m = blank();
  m->config_ = config_;
  m->store_ = store_;
  POCKETLLM_RETURN_IF_ERROR(m->bind());
  return std::unique_ptr<LanguageModel>(std::move(m));
}

Status TransformerModel::require(const std::string& name, std::vector<int64_t> shape, const Weight** out) const {
  auto w = store_->require(name, shape);
  if (!w) return w.status();
  *out = w.value();
  return Status::ok();
}

// Logits of the `count` gathered rows against head rows [r0, r0 + n), bias included, into y (row stride
// ldy). A packed quantized head runs the int8 kernels on packed_x_ (quantized by the caller); a quantized
// head without them and few rows (decoding) takes dot products from the stored blocks; otherwise a tile
// of rows (dequantized and/or perturbed as needed) and a GEMM.
void TransformerModel::head_tile(size_t count, size_t r0, size_t n, const Perturbation& p, float* y, size_t ldy,
                                 float* bias_scratch) {
  const Weight& head = head_weight();
  const Weight* bias = head_bias();
  const size_t d = head_input_dim();
  if (head.packed != nullptr && n % 16 == 0) {
    packed_product(packed_x_, 0, count, head, r0, n, y, ldy);
  } else if (direct_kernel_type(head.dtype) && head.packed == nullptr && count <= kQuantDirectMaxRows &&
             !(p.active && head.trainable)) {
    const uint64_t row_bytes = dtype_bytes(head.dtype, d);
    const auto* base = static_cast<const uint8_t*>(head.data);
    for (size_t j = 0; j < n; ++j)
      for (size_t i = 0; i < count; ++i) y[i * ldy + j] = quantized_row_dot(head.dtype, base + (r0 + j) * row_bytes, gathered_.data() + i * d, d);
  } else if (packed_f32_rows_ == count && count > 0) {
    const gemm::Path path = gemm::chosen_path();
    const float* w = weight_rows(head, r0, n, p, head_scratch(n * d, 0));
    gemm::multiply_tile(path, packed_f32_, count, d, w, n, thread_scratch(gemm::tile_scratch_floats(path, n, d), 9), y, ldy);
  } else {
    const float* w = weight_rows(head, r0, n, p, head_scratch(n * d, 0));
    ConstMat h(gathered_.data(), static_cast<Eigen::Index>(count), static_cast<Eigen::Index>(d));
    ConstMat wm(w, static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(d));
    Eigen::Map<RowMat, 0, Eigen::OuterStride<>> o(y, static_cast<Eigen::Index>(count), static_cast<Eigen::Index>(n),
                                                   Eigen::OuterStride<>(static_cast<Eigen::Index>(ldy)));
    o.noalias() = h * wm.transpose();
  }
  if (bias) add_bias_rows(weight_rows(*bias, 0, 1, p, bias_scratch) + r0, count, n, y, ldy);
}

// head_tile's float path (packed_f32_ holds `count` rows) a block of rows at a time: the tile of head rows
// packed once, each block's logits (bias included) handed to fn(i0, rows, logits) while they are in L1 (a
// tile of logits for every row went out to L3 before it was read). The same bytes as head_tile.
template <class Fn>
void TransformerModel::head_tile_in_blocks(size_t count, size_t r0, size_t n, const Perturbation& p, Fn&& fn) {
  const Weight& head = head_weight();
  const Weight* bias = head_bias();
  const size_t d = head_input_dim();
  const gemm::Path path = gemm::chosen_path();
  float* panels = thread_scratch(gemm::tile_scratch_floats(path, n, d), 9);
  gemm::pack_w(path, weight_rows(head, r0, n, p, head_scratch(n * d, 0)), d, n, d, panels);
  const size_t mr = gemm::row_block(path);
  const size_t mb = std::max(mr, kLogitBlockFloats / std::max<size_t>(n, 1) / mr * mr);
  float* lg = head_scratch(mb * n + (bias ? head.rows() : 0), 1);
  const float* b = bias ? weight_rows(*bias, 0, 1, p, lg + mb * n) + r0 : nullptr;
  for (size_t i0 = 0; i0 < count; i0 += mb) {
    const size_t rows = std::min(mb, count - i0);
    gemm::multiply_panels(path, packed_f32_ + i0 * d, rows, d, panels, n, lg, n);
    if (b != nullptr) add_bias_rows(b, rows, n, lg, n);
    fn(i0, rows, static_cast<const float*>(lg));
  }
}

void TransformerModel::prepare_head_input(ThreadPool* pool, size_t count, const Perturbation& p) {
  const Weight& head = head_weight();
  const size_t d = head_input_dim();
  packed_f32_rows_ = 0;
  if (head.packed != nullptr) {
    quantize_activations(gathered_.data(), count, d, head.dtype, &packed_x_);
    return;
  }
  const bool direct = direct_kernel_type(head.dtype) && count <= kQuantDirectMaxRows && !(p.active && head.trainable);
  const gemm::Path path = gemm::chosen_path();
  if (direct || path == gemm::Path::kEigen || count < gemm::kMinRows) return;
  // The calling thread's packed-X scratch (linear() packs there too; no layer runs while the head does).
  packed_f32_ = thread_scratch(gemm::packed_x_floats(path, count, d), 10);
  pack_x_parallel(pool, path, gathered_.data(), count, d, packed_f32_);
  packed_f32_rows_ = count;
}

void TransformerModel::logits(ThreadPool* pool, const float* hidden, const std::vector<int>& rows, const Perturbation& p,
                              std::vector<float>* out) {
  const size_t d = head_input_dim();
  const Weight& head = head_weight();
  const size_t vocab = head.rows();
  gathered_.resize(rows.size() * d);
  for (size_t i = 0; i < rows.size(); ++i)
    std::copy_n(hidden + static_cast<size_t>(rows[i]) * d, d, gathered_.begin() + static_cast<std::ptrdiff_t>(i * d));
  out->resize(rows.size() * vocab);
  prepare_head_input(pool, rows.size(), p);
  const size_t tiles = (vocab + kVocabTile - 1) / kVocabTile;
  parallel_for(pool, tiles, [&](size_t t) {
    const size_t r0 = t * kVocabTile, n = std::min(kVocabTile, vocab - r0);
    head_tile(rows.size(), r0, n, p, out->data() + r0, vocab, head_bias() ? head_scratch(vocab, 1) : nullptr);
  });
}

Result<LossResult> TransformerModel::token_loss(ThreadPool* pool, const TokenBatch& batch,
                                                const std::vector<int32_t>& targets, const Perturbation& p) {
  const int vocab = config_.vocab_size;
  if (targets.size() != batch.tokens.size()) return invalid_argument("token_loss: targets do not match the batch");
  std::vector<int>& rows = loss_rows_;
  std::vector<int32_t>& row_target = loss_targets_;
  rows.clear();
  row_target.clear();
  for (int b = 0; b < batch.batch; ++b) {
    for (int t = 0; t < batch.lengths[b]; ++t) {
      const int32_t tg = targets[static_cast<size_t>(b) * batch.seq_len + t];
      if (tg < 0) continue;
      if (tg >= vocab) return invalid_argument("token_loss: target id " + std::to_string(tg) + " outside the vocabulary");
      rows.push_back(b * batch.seq_len + t);
      row_target.push_back(tg);
    }
  }
  LossResult result;
  if (rows.empty()) return result;
  POCKETLLM_RETURN_IF_ERROR(forward_hidden(pool, batch, p, nullptr, &hidden_));

  const size_t d = head_input_dim();
  const size_t P = rows.size();
  gathered_.resize(P * d);
  for (size_t i = 0; i < P; ++i)
    std::copy_n(hidden_.data() + static_cast<size_t>(rows[i]) * d, d, gathered_.begin() + static_cast<std::ptrdiff_t>(i * d));
  const Weight& head = head_weight();
  const Weight* bias = head_bias();
  const size_t V = head.rows();
  // A fixed number of chunks, not one per thread: the loss's bits do not depend on the thread count
  // (the two passes of a ZO step may run on different numbers of threads: client/paired_forward.h).
  const size_t chunks = std::min((V + kVocabTile - 1) / kVocabTile, kLossChunks);
  const size_t per_chunk = ((V + chunks - 1) / chunks + kVocabTile - 1) / kVocabTile * kVocabTile;
  // Online log-sum-exp per chunk: running max and sum for each scored row.
  std::vector<float>& cmax = chunk_max_;
  std::vector<float>& csum = chunk_sum_;
  std::vector<float>& target_logit = target_logit_;
  cmax.assign(chunks * P, -std::numeric_limits<float>::infinity());
  csum.assign(chunks * P, 0.0f);
  target_logit.assign(P, 0.0f);
  prepare_head_input(pool, P, p);
  parallel_for(pool, chunks, [&](size_t c) {
    float* mx = cmax.data() + c * P;
    float* sm = csum.data() + c * P;
    const size_t v_end = std::min(V, (c + 1) * per_chunk);
    for (size_t r0 = c * per_chunk; r0 < v_end; r0 += kVocabTile) {
      const size_t n = std::min(kVocabTile, v_end - r0);
      // Rows [i0, i0 + count) of the tile's logits (row stride n) into each row's running log-sum-exp.
      auto fold = [&](size_t i0, size_t count, const float* lg) {
        logsumexp_fold_rows(lg, count, n, mx + i0, sm + i0);
        for (size_t i = i0; i < i0 + count; ++i) {
          const size_t tg = static_cast<size_t>(row_target[i]);
          if (tg >= r0 && tg < r0 + n) target_logit[i] = lg[(i - i0) * n + tg - r0];
        }
      };
      if (packed_f32_rows_ == P) {
        head_tile_in_blocks(P, r0, n, p, fold);
      } else {
        float* lg = head_scratch(P * kVocabTile + (bias ? V : 0), 1);  // logits tile, then the bias
        head_tile(P, r0, n, p, lg, n, lg + P * kVocabTile);
        fold(0, P, lg);
      }
    }
  });
  for (size_t i = 0; i < P; ++i) {
    float m = -std::numeric_limits<float>::infinity();
    for (size_t c = 0; c < chunks; ++c) m = std::max(m, cmax[c * P + i]);
    double s = 0;
    for (size_t c = 0; c < chunks; ++c)
      if (csum[c * P + i] > 0) s += static_cast<double>(csum[c * P + i]) * std::exp(static_cast<double>(cmax[c * P + i] - m));
    result.sum += std::log(s) + m - target_logit[i];
  }
  result.count = P;
  return result;
}

Result<LossResult> TransformerModel::choice_loss(ThreadPool* pool, const TokenBatch& batch,
                                                 const std::vector<ChoiceTarget>& targets,
                                                 const std::vector<int32_t>& candidates, const Perturbation& p,
                                                 std::vector<float>* candidate_logits) {
  if (candidates.empty()) return invalid_argument("choice_loss: no candidate tokens");
  for (int32_t c : candidates)
    if (c < 0 || c >= config_.vocab_size) return invalid_argument("choice_loss: candidate id " + std::to_string(c) + " outside the vocabulary");
  for (const auto& t : targets) {
    if (t.row < 0 || t.row >= batch.batch || t.position < 0 || t.position >= batch.lengths[t.row])
      return invalid_argument("choice_loss: target position outside its sequence");
    if (t.label_index < 0 || t.label_index >= static_cast<int>(candidates.size()))
      return invalid_argument("choice_loss: label index outside the candidates");
  }
  read_tokens_.clear();
  for (const auto& t : targets) read_tokens_.push_back(static_cast<size_t>(t.row) * batch.seq_len + static_cast<size_t>(t.position));
  const Status pass = forward_hidden(pool, batch, p, nullptr, &hidden_);
  read_tokens_.clear();
  POCKETLLM_RETURN_IF_ERROR(pass);
  const size_t d = head_input_dim();
  const size_t k = candidates.size(), P = targets.size();
  const Weight& head = head_weight();
  const Weight* bias = head_bias();
  std::vector<float>& cw = cand_w_;
  std::vector<float>& row_buf = row_buf_;
  std::vector<float>& bias_buf = bias_buf_;
  std::vector<float>& cb = cand_b_;
  cw.resize(k * d);
  row_buf.resize(d);
  cb.assign(k, 0.0f);
  if (bias) {
    bias_buf.resize(bias->numel());
    const float* b = weight_rows(*bias, 0, 1, p, bias_buf.data());
    for (size_t j = 0; j < k; ++j) cb[j] = b[candidates[j]];
  }
  for (size_t j = 0; j < k; ++j) {
    const float* w = weight_rows(head, static_cast<size_t>(candidates[j]), 1, p, row_buf.data());
    std::copy_n(w, d, cw.begin() + static_cast<std::ptrdiff_t>(j * d));
  }
  std::vector<float>& lg = cand_logits_;
  lg.resize(P * k);
  LossResult result;
  for (size_t i = 0; i < P; ++i) {
    const float* hrow = hidden_.data() + (static_cast<size_t>(targets[i].row) * batch.seq_len + targets[i].position) * d;
    float m = -std::numeric_limits<float>::infinity();
    for (size_t j = 0; j < k; ++j) {
      double acc = 0;
      for (size_t e = 0; e < d; ++e) acc += static_cast<double>(hrow[e]) * cw[j * d + e];
      lg[i * k + j] = static_cast<float>(acc) + cb[j];
      m = std::max(m, lg[i * k + j]);
    }
    double s = 0;
    for (size_t j = 0; j < k; ++j) s += std::exp(static_cast<double>(lg[i * k + j] - m));
    result.sum += std::log(s) + m - lg[i * k + static_cast<size_t>(targets[i].label_index)];
  }
  result.count = P;
  if (candidate_logits) candidate_logits->assign(lg.begin(), lg.end());
  return result;
}

}  // namespace pocketllm
