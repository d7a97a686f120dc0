// The weights of a model under their canonical (Hugging Face) names and shapes.
//
// Frozen weights stay where they were loaded (memory-mapped F32, or F16/BF16 converted per tile as
// they are read). Trainable weights are owned float32 copies that the trainer updates in place.
// During a zeroth-order step the forward pass reads every trainable weight through weight_rows(),
// which adds scale * z(seed, tensor) to the tile it returns (out of place): theta is never written
// until the update, so a run equals the replay of its log bit for bit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "pocketllm/common/dtype.h"
#include "pocketllm/common/name_pattern.h"
#include "pocketllm/common/perturbation.h"
#include "pocketllm/common/safetensors.h"
#include "pocketllm/common/status.h"
#include "pocketllm/common/update_log.h"

namespace pocketllm {

struct Weight {
  std::string name;
  std::vector<int64_t> shape;  // canonical shape; 1-D tensors are one row
  DType dtype = DType::kF32;   // storage type of `data`
  const void* data = nullptr;  // storage: inside a mapped file or an owned buffer
  uint64_t tag = 0;            // tensor_tag(name)
  bool trainable = false;
  // The tensor's step scale s (--trainable-scale; docs/training.md "Step scales"): its perturbations and
  // updates are theta +- (c * s) * z, the float32 product c * s taken once; 1 leaves them as they were.
  float z_scale = 1.0f;
  // Trainable rows (--trainable-rows; docs/training.md "Trainable rows"): when not empty, one flag per row
  // of the canonical shape, and only the flagged rows are perturbed and updated (z of the others is never
  // added). Empty: every row trains.
  std::vector<uint8_t> row_mask;
  bool row_trains(size_t r) const { return row_mask.empty() || row_mask[r] != 0; }
  float* mutable_f32 = nullptr;  // trainable weights: the float32 values (== data)
  bool writable = false;         // data is owned float32 memory that may be written in place
  const uint8_t* packed = nullptr;  // frozen Q8_0/Q4_0: the same weights repacked for the int8 kernels, or null
  // A low-rank adapter on this linear weight (client/lora.h): the layer computes
  // x W^T + lora_scale * (x A^T) B^T with A = lora_a [r, in] and B = lora_b [out, r], both read through
  // weight_rows() (so perturbed when trainable). Null when the weight has none.
  const Weight* lora_a = nullptr;
  const Weight* lora_b = nullptr;
  float lora_scale = 0.0f;
  // A bias this linear weight did not have, added as a trainable set (client/added_biases.h): the layer
  // adds it to its output like a bias of the checkpoint. Null when none was added.
  const Weight* added_bias = nullptr;
  bool adapter = false;  // this tensor is an adapter's A or B (not part of the base model's id)

  size_t numel() const;
  size_t rows() const { return shape.size() <= 1 ? 1 : static_cast<size_t>(shape[0]); }
  size_t cols() const { return rows() == 0 ? 0 : numel() / rows(); }
  size_t trainable_numel() const;  // numel(), or the flagged rows' elements under a row mask
};

// The direction a forward pass perturbs trainable weights along: theta + scale * z(seed).
struct Perturbation {
  bool active = false;
  Distribution dist = Distribution::kRademacher;
  uint64_t seed = 0;
  float scale = 0.0f;
};

class WeightStore {
 public:
  WeightStore() = default;
  WeightStore(WeightStore&&) = default;
  WeightStore& operator=(WeightStore&&) = default;

  // Adds a tensor that lives in `keep_alive`-owned storage (a mapped file), or copies nothing.
  // `data` lives in a memory-mapped file (kept alive with keep()).
  Weight& add_view(std::string name, std::vector<int64_t> shape, DType dtype, const void* data);
  // Adds a tensor with an owned float32 buffer (e.g. permuted from a llama2.c checkpoint).
  Weight& add_owned_f32(std::string name, std::vector<int64_t> shape, std::vector<float> values);
  // Keeps a mapped file or safetensors file alive as long as the store.
  void keep(std::shared_ptr<void> source) { sources_.push_back(std::move(source)); }

  const Weight* find(const std::string& name) const;
  Weight* find_mutable(const std::string& name);
  Result<const Weight*> require(const std::string& name, const std::vector<int64_t>& shape) const;
  const std::vector<std::unique_ptr<Weight>>& all() const { return weights_; }

  // Makes every weight whose name matches `patterns` trainable: float32 values the trainer updates in
  // place. Owned float32 weights are used where they are; mapped ones are copied into huge-page-backed
  // memory chunk by chunk while the copied file pages are released, so the weights are never resident
  // twice. Returns the number selected; an empty selection is an error naming the patterns.
  Result<size_t> make_trainable(const NamePatterns& patterns);
  std::vector<const Weight*> trainable() const;
  size_t trainable_numel() const;
  std::vector<NamedTensor> trainable_tensors();  // for replay

  // SHA-256 over the canonical tensors of the base model, adapters excluded (docs/update-log.md). Reads
  // every byte: call once at load.
  std::string compute_model_id() const;
  size_t total_numel() const;
  size_t storage_bytes() const;  // bytes of all weights in their storage types

 private:
  std::vector<std::unique_ptr<Weight>> weights_;
  std::map<std::string, Weight*> by_name_;
  std::vector<std::shared_ptr<void>> sources_;
  std::vector<std::unique_ptr<float[]>> owned_;
  struct FreeDeleter {
    void operator()(float* p) const;
  };
  std::vector<std::unique_ptr<float, FreeDeleter>> trainable_buffers_;
};

// Rows [row0, row0 + nrows) of `w` as float32: a pointer straight into the weight when it is F32 and
// not perturbed, else the rows converted and/or perturbed into `scratch` (nrows * cols floats).
const float* weight_rows(const Weight& w, size_t row0, size_t nrows, const Perturbation& p, float* scratch);

}  // namespace pocketllm
