// In-memory block quantization of a loaded model's frozen matrices (LoadOptions::quantize).
#include <cstdlib>
#include <memory>
#include <vector>

#include "file_pages.h"
#include "pocketllm/client/loader.h"
#include "pocketllm/common/quant.h"

namespace pocketllm {

Result<size_t> quantize_frozen_weights(LanguageModel& model, DType to) {
  WeightStore* ws = &model.weights();
  // GPT-2's Conv1D matrices are stored [in, out] and read in column tiles that need not start on a block:
  // they stay in their stored type (its embeddings are quantized).
  const bool conv1d = model.config().arch == Architecture::kGpt2;
  if (to != DType::kQ8_0 && to != DType::kQ4_0) return invalid_argument(std::string("cannot quantize weights to ") + dtype_name(to) + " (q8_0 or q4_0)");
  const size_t block = dtype_block_size(to);
  size_t count = 0;
  std::vector<float> row;
  for (const auto& w : ws->all()) {
    if (w->trainable || w->adapter || w->shape.size() != 2 || dtype_is_quantized(w->dtype) || w->cols() % block != 0) continue;
    if (conv1d && w->name.rfind("transformer.h.", 0) == 0) continue;
    const size_t rows = w->rows(), cols = w->cols();
    const uint64_t row_bytes = dtype_bytes(to, cols);
    auto* dst = static_cast<uint8_t*>(std::malloc(static_cast<size_t>(row_bytes * rows)));
    if (dst == nullptr) return out_of_range("cannot allocate " + std::to_string(row_bytes * rows) + " bytes to quantize '" + w->name + "'");
    std::shared_ptr<void> owner(dst, [](void* p) { std::free(p); });
    row.resize(cols);
    const auto* src = static_cast<const uint8_t*>(w->data);
    const uint64_t src_row = dtype_bytes(w->dtype, cols);
    // A mapped file's pages are dropped every few MiB as their rows are quantized, so a large matrix (a
    // 262 144-row embedding) is never resident twice.
    constexpr uint64_t kReleaseBytes = uint64_t{4} << 20;
    size_t released = 0;
    for (size_t r = 0; r < rows; ++r) {
      convert_to_f32(w->dtype, src + r * src_row, cols, row.data());
      if (!quantize_checked(to, row.data(), cols, dst + r * row_bytes))
        return corrupt("tensor '" + w->name + "' holds a non-finite value; cannot quantize it");
      if (!w->writable && (r + 1 - released) * src_row >= kReleaseBytes) {
        release_file_pages(src + released * src_row, (r + 1 - released) * src_row);
        released = r + 1;
      }
    }
    if (!w->writable) release_file_pages(src, src_row * rows);  // a mapped file's pages: the quantized copy replaces them
    w->data = dst;
    w->dtype = to;
    w->writable = false;
    ws->keep(std::move(owner));
    ++count;
  }
  return count;
}

}  // namespace pocketllm
