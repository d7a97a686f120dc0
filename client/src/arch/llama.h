// The Llama architecture (LlamaForCausalLM and relatives): RMSNorm, rotary position embedding,
// grouped-query attention, SwiGLU MLP, tied or untied head. Covers Llama 1/2/3, TinyLlama, SmolLM,
// Qwen2 (q/k/v biases), Qwen3 (q/k norms), Gemma 3 (ModelConfig's Gemma fields: (1 + w) norms, sandwich
// norms, GeGLU, a scaled embedding, sliding-window layers with their own rope base) and llama2.c
// checkpoints (converted to Hugging Face layout at load).
#pragma once

#include <memory>

#include <nlohmann/json.hpp>

#include "kernels.h"
#include "transformer_base.h"

namespace pocketllm {

class LlamaModel : public TransformerModel {
 public:
  // Checks that `weights` hold every tensor `config` needs, with the right shapes.
  static Result<std::unique_ptr<LlamaModel>> create(ModelConfig config, WeightStore weights);

  Status forward_hidden(ThreadPool* pool, const TokenBatch& batch, const Perturbation& p, KVCache* cache,
                        std::vector<float>* hidden) override;
  // Groups of whole sequences the last pass ran its layers in, one task each (1: op by op over the pool).
  size_t last_pass_groups() const { return groups_.size() > 1 ? groups_.size() : 1; }

 protected:
  const Weight& head_weight() const override { return *head_; }

 private:
  struct Layer {
    const Weight *attn_norm, *q, *k, *v, *o, *q_bias = nullptr, *k_bias = nullptr, *v_bias = nullptr, *o_bias = nullptr;
    const Weight *mlp_norm, *gate, *up, *down, *gate_bias = nullptr, *up_bias = nullptr, *down_bias = nullptr;
    const Weight *q_norm = nullptr, *k_norm = nullptr;  // Qwen3, Gemma 3 (ModelConfig::qk_norm)
    const Weight *post_attn_norm = nullptr, *post_mlp_norm = nullptr;  // Gemma 3 (ModelConfig::sandwich_norms)
  };
  // Whole sequences [b0, b1) and their activation rows [r0, r1) (contiguous: lay_out_rows).
  struct RowSpan {
    size_t b0, b1, r0, r1;
  };
  Status bind() override;
  std::unique_ptr<TransformerModel> blank() const override { return std::unique_ptr<TransformerModel>(new LlamaModel()); }
  size_t prepare_rows(const TokenBatch& batch, size_t past, bool unpadded);
  // Layer l over the span's rows of x_ (in place); `up` is the MLP's up-product buffer when it needs one.
  void run_layer(ThreadPool* pool, size_t l, const RowSpan& s, size_t T, const Perturbation& p, KVCache* cache,
                 std::vector<float>* up);
  // Groups of whole sequences that run layers [0, layers) as one task each (llama_sequence_groups.cpp):
  // how many for this pass (1: the layers run op by op over the pool), and the run.
  size_t sequence_groups(ThreadPool* pool, size_t B, size_t R, const KVCache* cache);
  void run_layers_grouped(ThreadPool* pool, size_t layers, size_t T, const Perturbation& p);
  void norm_heads(ThreadPool* pool, const Weight* norm, float* x, size_t rows, size_t heads, const Perturbation& p);
  // residual[rows, d] += the layer's MLP of its normalised rows; scratch rows from r0 of xn_, gate_, tmp_.
  void add_mlp(ThreadPool* pool, const Layer& L, size_t r0, size_t rows, const Perturbation& p, float* residual,
               std::vector<float>* up);
  void run_last_layer_selected(ThreadPool* pool, size_t l, size_t T, size_t R, const Perturbation& p);
  Status bind_layer(int l);
  void norm(ThreadPool* pool, const Weight& w, const float* x, size_t rows, float* out, const Perturbation& p);
  // Layer l's rope table and sliding window (0: full attention).
  const RopeTable& rope_of(size_t l) const;
  size_t window_of(size_t l) const;

  const Weight* embed_ = nullptr;
  const Weight* final_norm_ = nullptr;
  const Weight* head_ = nullptr;
  std::vector<Layer> layers_;
  std::vector<float> inv_freq_, inv_freq_local_;  // local: the sliding layers' own base (Gemma 3), else empty
  RopeTable rope_table_, rope_local_table_;  // cos/sin per position, grown as positions are seen
  // Activations, sized for the largest batch seen and then reused.
  std::vector<float> gate_, up_;  // (x_, q_, … are the base class's, sized here for grouped-query attention)
  std::vector<int32_t> positions_;
  std::vector<int32_t> sel_pos_;  // the read rows' positions (last layer)
  std::vector<RowSpan> groups_;              // sequence_groups' spans for the pass
  std::vector<std::vector<float>> group_up_;  // each group's up-product buffer
};

// The config of a plain Llama (llama2.c checkpoints, test and benchmark models): the given sizes,
// head_dim = hidden / heads, RMSNorm eps 1e-5, rope theta 10000, BOS 1, EOS 2.
ModelConfig llama_config(int vocab, int hidden, int intermediate, int layers, int heads, int kv_heads, int max_positions, bool tied);

// Rotary inverse frequencies (with Llama 3 scaling when configured), head_dim / 2 values.
std::vector<float> rope_inv_freq(const ModelConfig& c);
// Llama 3 scaling as per-frequency divisors of the unscaled inverse frequencies (what GGUF files store
// as rope_freqs.weight): 1 for short wavelengths, `factor` for long ones, smooth in between.
std::vector<float> llama3_rope_divisors(const ModelConfig& c);

// What llama.cpp fixes for every gemma3 GGUF rather than storing: the sixth layer of every six has full
// attention, the others a sliding window; the sliding layers' rope base.
constexpr int kGemma3SlidingPattern = 6;
constexpr float kGemma3LocalRopeBase = 10000.0f;

// config.json's rope_scaling (none, "default", "llama3", "linear") into c->rope_scaling; writes it back.
Status parse_rope_scaling(const nlohmann::json& j, ModelConfig* c, const std::string& where);
void write_rope_scaling(const ModelConfig& c, nlohmann::json* out);
// The registry hooks Llama-named decoders share (Gemma 3 too): stored names are canonical; a checkpoint
// without lm_head.weight has a tied head; the factory.
bool llama_canonical_name(const std::string& stored, std::string* canonical);
void llama_resolve_ties(ModelConfig* c, const WeightStore& weights);
Result<std::unique_ptr<LanguageModel>> create_llama(ModelConfig config, WeightStore weights);

}  // namespace pocketllm
