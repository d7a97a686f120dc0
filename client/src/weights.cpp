#include "pocketllm/client/weights.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "kernels_quant_packed.h"
#include "pocketllm/common/model_id.h"

namespace pocketllm {

void WeightStore::FreeDeleter::operator()(float* p) const { std::free(p); }

size_t Weight::numel() const {
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  return n;
}

Weight& WeightStore::add_view(std::string name, std::vector<int64_t> shape, DType dtype, const void* data) {
  auto w = std::make_unique<Weight>();
  w->name = std::move(name);
  w->shape = std::move(shape);
  w->dtype = dtype;
  w->data = data;
  w->tag = tensor_tag(w->name);
  Weight& ref = *w;
  by_name_[ref.name] = &ref;
  weights_.push_back(std::move(w));
  return ref;
}

Weight& WeightStore::add_owned_f32(std::string name, std::vector<int64_t> shape, std::vector<float> values) {
  std::unique_ptr<float[]> buf(new float[values.size()]);
  std::memcpy(buf.get(), values.data(), values.size() * sizeof(float));
  Weight& w = add_view(std::move(name), std::move(shape), DType::kF32, buf.get());
  w.writable = true;
  owned_.push_back(std::move(buf));
  return w;
}

const Weight* WeightStore::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

Weight* WeightStore::find_mutable(const std::string& name) {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

Result<const Weight*> WeightStore::require(const std::string& name, const std::vector<int64_t>& shape) const {
  const Weight* w = find(name);
  if (w == nullptr) return not_found("missing tensor '" + name + "'");
  if (w->shape != shape) {
    auto fmt = [](const std::vector<int64_t>& s) {
      std::string out = "[";
      for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
      return out + "]";
    };
    return mismatch("tensor '" + name + "' has shape " + fmt(w->shape) + ", expected " + fmt(shape) +
                    " from the model config");
  }
  if (!dtype_is_weight_type(w->dtype))
    return unsupported("tensor '" + name + "' has dtype " + dtype_name(w->dtype) +
                       "; weights must be F32, F16, BF16 or a GGUF block-quantized type");
  return w;
}

Result<size_t> WeightStore::make_trainable(const NamePatterns& patterns) {
  size_t selected = 0;
  for (auto& w : weights_) {
    if (!patterns.matches(w->name)) continue;
    ++selected;
    if (w->trainable) continue;
    const size_t n = w->numel();
    if (w->dtype == DType::kF32 && w->writable) {
      w->mutable_f32 = static_cast<float*>(const_cast<void*>(w->data));
      w->trainable = true;
      continue;
    }
    // 2 MiB-aligned, huge-page-advised memory: a few hundred page faults instead of one per 4 KiB.
    // Small tensors (norms, biases) use ordinary memory: a huge page each would waste most of it.
    constexpr size_t kHuge = size_t{2} << 20;
    const bool huge = n * sizeof(float) >= kHuge;
    const size_t align = huge ? kHuge : 64;
    const size_t bytes = (n * sizeof(float) + 4095) / 4096 * 4096;
    float* dst = static_cast<float*>(std::aligned_alloc(align, bytes));
    if (dst == nullptr) return out_of_range("cannot allocate " + std::to_string(bytes) + " bytes for tensor '" + w->name + "'");
    // Huge pages for the whole 2 MiB pieces only; the tail keeps 4 KiB pages so nothing is wasted.
    if (huge) ::madvise(dst, n * sizeof(float) / kHuge * kHuge, MADV_HUGEPAGE);
    const uint8_t* src = static_cast<const uint8_t*>(w->data);
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    const size_t chunk = size_t{1} << 21;  // elements per copy step
    for (size_t i = 0; i < n; i += chunk) {
      const size_t len = std::min(chunk, n - i);
      convert_to_f32(w->dtype, src + dtype_bytes(w->dtype, i), len, dst + i);
      // Release the file pages just copied (only pages wholly inside this tensor): never two copies.
      const uintptr_t lo = (reinterpret_cast<uintptr_t>(src + dtype_bytes(w->dtype, i)) + page - 1) / page * page;
      const uintptr_t hi = reinterpret_cast<uintptr_t>(src + dtype_bytes(w->dtype, i + len)) / page * page;
      const uintptr_t tensor_lo = (reinterpret_cast<uintptr_t>(src) + page - 1) / page * page;
      const uintptr_t tensor_hi = reinterpret_cast<uintptr_t>(src + dtype_bytes(w->dtype, n)) / page * page;
      const uintptr_t a = std::max(lo, tensor_lo), b = std::min(hi, tensor_hi);
      if (b > a) ::madvise(reinterpret_cast<void*>(a), b - a, MADV_DONTNEED);
    }
    w->data = dst;
    w->dtype = DType::kF32;
    w->packed = nullptr;  // the trainable float32 values are the weight now
    w->mutable_f32 = dst;
    w->writable = true;
    w->trainable = true;
    trainable_buffers_.emplace_back(dst);
  }
  if (selected == 0) {
    std::string list;
    for (const auto& p : patterns.patterns()) list += (list.empty() ? "" : ",") + p;
    return invalid_argument("no tensor matches the trainable patterns '" + list + "'");
  }
  return selected;
}

std::vector<const Weight*> WeightStore::trainable() const {
  std::vector<const Weight*> out;
  for (const auto& w : weights_)
    if (w->trainable) out.push_back(w.get());
  return out;
}

size_t Weight::trainable_numel() const {
  if (row_mask.empty()) return numel();
  size_t rows_on = 0;
  for (uint8_t f : row_mask) rows_on += f != 0;
  return rows_on * cols();
}

size_t WeightStore::trainable_numel() const {
  size_t n = 0;
  for (const auto& w : weights_)
    if (w->trainable) n += w->trainable_numel();
  return n;
}

std::vector<NamedTensor> WeightStore::trainable_tensors() {
  std::vector<NamedTensor> out;
  for (auto& w : weights_) {
    if (!w->trainable) continue;
    NamedTensor t(w->name, w->mutable_f32, w->numel(), w->z_scale);
    const size_t cols = w->cols();
    for (size_t r = 0; r < w->row_mask.size(); ++r) {  // consecutive flagged rows make one span
      if (!w->row_mask[r]) continue;
      if (!t.spans.empty() && t.spans.back().first + t.spans.back().second == r * cols) t.spans.back().second += cols;
      else t.spans.emplace_back(r * cols, cols);
    }
    out.push_back(std::move(t));
  }
  return out;
}

std::string WeightStore::compute_model_id() const {
  std::vector<CanonicalTensorRef> refs;
  refs.reserve(weights_.size());
  for (const auto& w : weights_)
    if (!w->adapter) refs.push_back({w->name, w->dtype, w->shape, w->data});
  return pocketllm::compute_model_id(std::move(refs));
}

size_t WeightStore::total_numel() const {
  size_t n = 0;
  for (const auto& w : weights_) n += w->numel();
  return n;
}

size_t WeightStore::storage_bytes() const {
  size_t n = 0;
  for (const auto& w : weights_) n += dtype_bytes(w->dtype, w->numel());
  return n;
}

const float* weight_rows(const Weight& w, size_t row0, size_t nrows, const Perturbation& p, float* scratch) {
  const size_t cols = w.cols();
  const size_t start = row0 * cols, count = nrows * cols;
  const bool perturb = p.active && w.trainable;
  if (perturb && !w.row_mask.empty()) {  // trainable rows only: the others are read as they are
    for (size_t r = 0; r < nrows; ++r) {
      const size_t at = (row0 + r) * cols;
      float* dst = scratch + r * cols;
      if (w.dtype == DType::kF32) std::copy_n(static_cast<const float*>(w.data) + at, cols, dst);
      else convert_to_f32(w.dtype, static_cast<const uint8_t*>(w.data) + dtype_bytes(w.dtype, at), cols, dst);
      if (w.row_mask[row0 + r]) add_scaled_z(p.dist, p.seed, w.tag, at, cols, p.scale * w.z_scale, dst, dst);
    }
    return scratch;
  }
  if (w.dtype == DType::kF32) {
    const float* src = static_cast<const float*>(w.data) + start;
    if (!perturb) return src;
    add_scaled_z(p.dist, p.seed, w.tag, start, count, p.scale * w.z_scale, src, scratch);
    return scratch;
  }
  if (w.packed != nullptr && dtype_is_quantized(w.dtype) && !perturb) {  // frozen, repacked: read the packed copy, not the released original
    unpack_rows(w, row0, nrows, scratch);
    return scratch;
  }
  convert_to_f32(w.dtype, static_cast<const uint8_t*>(w.data) + dtype_bytes(w.dtype, start), count, scratch);
  if (perturb) add_scaled_z(p.dist, p.seed, w.tag, start, count, p.scale * w.z_scale, scratch, scratch);
  return scratch;
}

}  // namespace pocketllm
