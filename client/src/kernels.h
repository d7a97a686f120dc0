// Numerical kernels of the forward pass. Plain float pointers and shapes at the boundary; Eigen maps
// inside. Row-major everywhere: an activation matrix [M, N] is M rows (tokens) of N features.
// Each kernel has a scalar reference in kernels_ref.h that tests compare against.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels_gemm.h"
#include "pocketllm/client/weights.h"
#include "pocketllm/common/thread_pool.h"

namespace pocketllm {

// Per-thread scratch that grows to the largest request and then stays (no allocation after warm-up).
// Slots are independent buffers: 0 weight tiles and 1 bias rows (linear), 2–3 norm parameters,
// 6–8 adapter A, B and x A^T (linear with an adapter), 9–10 packed W tiles and packed X (kernels_gemm.h),
// 4–5 output-head tiles and logits (transformer_base), 11 and 14 the up and gate products of
// linear_swiglu and 15 its packed up tile (its gate tile in 9), 16 gated_mlp's packed hidden rows, 12–13
// attention's packed queries and scores. A slot's pointer is valid until its next call and aligned
// to 64 bytes.
float* thread_scratch(size_t floats, int slot);

// X [m, k] into `packed` (gemm::packed_x_floats floats) for the packed GEMM path `path`, the panels split
// over the pool's threads when there are enough rows (the bytes do not depend on the split).
void pack_x_parallel(ThreadPool* pool, gemm::Path path, const float* x, size_t m, size_t k, float* packed);

// Y[M, N] = X[M, K] * W[N, K]^T (+ bias[N]). W and bias are read through weight_rows(), so trainable
// ones are perturbed by `p`. Parallel over tiles of output columns.
void linear(ThreadPool* pool, const float* x, size_t m, size_t k, const Weight& w, const Weight* bias,
            const Perturbation& p, float* y);

// Y[M, N] = X[M, K] * W[K, N] (+ bias[N]) for weights stored in x out (GPT-2's Conv1D layout, kept
// as the canonical layout so z indexes it row-major). Parallel over tiles of output columns; each tile
// of W is gathered (and perturbed) row segment by row segment.
void linear_in_out(ThreadPool* pool, const float* x, size_t m, size_t k, const Weight& w, const Weight* bias,
                   const Perturbation& p, float* y);

// out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * (gamma + offset), for M rows of width d (offset 1: Gemma's
// (1 + w) scale; 0 leaves the bytes of plain gamma).
void rms_norm(ThreadPool* pool, const float* x, size_t m, size_t d, const Weight& gamma, float eps,
              const Perturbation& p, float* out, float offset = 0.0f);

// out[r] = (x[r] - mean) / sqrt(var + eps) * gamma + beta (biased variance, as torch.nn.LayerNorm).
void layer_norm(ThreadPool* pool, const float* x, size_t m, size_t d, const Weight& gamma, const Weight* beta,
                float eps, const Perturbation& p, float* out);

// Rotary position embedding in Hugging Face's convention: within each head of width hd, element i
// pairs with i + hd/2, rotated by angle pos * inv_freq[i]. x is [M, heads * hd]; positions[M].
void rope(float* x, size_t m, size_t heads, size_t hd, const int32_t* positions, const float* inv_freq);

// The same rotation with the cosines and sines looked up: cos and sin of (float) pos * inv_freq[i] for
// positions 0 .. positions-1, grown to the largest position asked for, so a model computes each angle once
// instead of once per layer and call (the same floats as above; sincos was ~5 % of a stories260K forward).
struct RopeTable {
  size_t half = 0, positions = 0;
  std::vector<float> cs;   // [position][2 * half]: the cosines, then the sines
  std::vector<float> inv;  // the inv_freq it was built from
  void ensure(const int32_t* pos, size_t m, const float* inv_freq, size_t half);
};
void rope(float* x, size_t m, size_t heads, size_t hd, const int32_t* positions, const RopeTable& table);

// Scaled dot-product attention with grouped-query heads, causal and padding masks.
//   q   [B * Tq, nh * hd]       queries of the new tokens; query t of sequence b is at position past + t
//   k,v [B * Tk, nkv * hd]      keys/values of positions 0 .. Tk-1 (the cache, or the batch itself)
//   key j is visible to query t when j <= past + t (if causal) and j < key_len[b], and, with a sliding
//   window W (causal only), when past + t - j < W
//   out [B * Tq, nh * hd]
//   scores are q·k times `scale` (0: 1 / sqrt(hd))
//   With seq_start (unpadded rows, no cache): sequence b's queries and keys are the rows
//   [seq_start[b], seq_start[b] + key_len[b]) of q, k, v and out; tq = tk = the longest sequence.
struct AttentionShape {
  size_t batch = 0, tq = 0, tk = 0, heads = 0, kv_heads = 0, head_dim = 0, past = 0;
  bool causal = true;
  const size_t* seq_start = nullptr;
  float scale = 0.0f;   // 0: 1 / sqrt(head_dim)
  size_t window = 0;    // sliding window (causal): the W most recent positions, the query's own included; 0: all
};
void attention(ThreadPool* pool, const AttentionShape& s, const float* q, const float* k, const float* v,
               const int32_t* key_len, float* out);

// linear() of the same x [m, k] through several weights (a layer's query, key and value projections),
// each output with the bytes linear() gives it. On the packed GEMM path, when no weight has an adapter, an
// added bias or a direct (quantized / half) kernel, x is packed once and every weight's tiles run as one
// set of tasks; otherwise one linear() after another. At most 8 outputs.
struct LinearOutput {
  const Weight* w = nullptr;
  const Weight* bias = nullptr;
  float* y = nullptr;
};
void linear_shared_input(ThreadPool* pool, const float* x, size_t m, size_t k, const LinearOutput* outs, size_t count,
                         const Perturbation& p);

// gate[i] = silu(gate[i]) * up[i]
void silu_mul(ThreadPool* pool, float* gate, const float* up, size_t n);

// The SwiGLU hidden layer h[M, N] = silu(X Wg^T + bg) * (X Wu^T + bu), N = gate.rows(), with the bytes of
// linear(gate) + linear(up) + silu_mul. On the packed GEMM path, when neither weight has a bias, an adapter
// or an added bias and neither runs a direct (quantized / half) kernel, tile by tile: the up product of a tile lives in
// per-thread scratch only, so the [M, N] up activations are never held. Otherwise those three calls, with
// `up_buffer` grown to M * N for the up product.
// `act` picks the gate's activation: SiLU (SwiGLU) or GELU with the tanh approximation (Gemma's GeGLU).
enum class GateActivation { kSilu, kGeluTanh };
// gate[i] = act(gate[i]) * up[i]: what linear_swiglu applies, fused or not.
void gated_mul(ThreadPool* pool, GateActivation act, float* gate, const float* up, size_t n);
void linear_swiglu(ThreadPool* pool, const float* x, size_t m, size_t k, const Weight& gate, const Weight* gate_bias,
                   const Weight& up, const Weight* up_bias, const Perturbation& p, float* h, std::vector<float>* up_buffer,
                   GateActivation act = GateActivation::kSilu);
// The gated MLP y[M, D] = linear(down, linear_swiglu(...)) with the bytes of those two calls (h [M, N] and
// up_buffer as their scratch). When linear_swiglu fuses and down is a plain float weight, each gated row
// block goes straight into the down projection's packed input: h is neither written nor packed.
void gated_mlp(ThreadPool* pool, const float* x, size_t m, size_t k, const Weight& gate, const Weight* gate_bias,
               const Weight& up, const Weight* up_bias, const Weight& down, const Weight* down_bias, const Perturbation& p,
               float* h, std::vector<float>* up_buffer, GateActivation act, float* y);
// x[i] = gelu(x[i]), tanh approximation (GPT-2 "gelu_new") or exact erf form.
void gelu_tanh(ThreadPool* pool, float* x, size_t n);
void gelu_erf(ThreadPool* pool, float* x, size_t n);
void relu(ThreadPool* pool, float* x, size_t n);
// Softmax of each row in place.
void softmax_rows(float* x, size_t m, size_t n);
// Folds row[0, n) into a running log-sum-exp: *max becomes max(*max, row), *sum the sum of exp(v - *max)
// over everything folded so far. Fixed 16-float blocks: the same bytes from any buffer.
void logsumexp_fold(const float* row, size_t n, float* max, float* sum);
// logsumexp_fold of each of `rows` rows of x (row stride n) into max[r], sum[r]: each row's bytes as alone.
void logsumexp_fold_rows(const float* x, size_t rows, size_t n, float* max, float* sum);

}  // namespace pocketllm
