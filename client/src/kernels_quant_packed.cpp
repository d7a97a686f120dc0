// The parts of the packed int8 kernels every instruction set shares: choosing the path once per process,
// repacking a weight store, and splitting a product over threads. The layouts and arithmetic are in the
// ISA files (kernels_quant_packed_isa.h).
#include "kernels_quant_packed.h"

#include <algorithm>
#include <cstdlib>

#include "kernels_quant_packed_isa.h"

namespace pocketllm {

using packed_isa::kRows;

const char* packed_quant_path() {
  static const char* path = packed_isa::detect(std::getenv("POCKETLLM_INT8"));
  return path;
}

bool packed_quant_kernels_available() { return packed_quant_path() != nullptr; }

bool packed_quant_type(DType t) { return packed_quant_kernels_available() && packed_isa::handles(t); }

size_t pack_quantized_weights(WeightStore* ws, const std::function<void(const Weight&)>& release) {
  size_t packed = 0;
  if (!packed_quant_kernels_available()) return 0;
  for (const auto& wp : ws->all()) {
    Weight& w = *ws->find_mutable(wp->name);
    if (!packed_isa::handles(w.dtype) || w.shape.size() != 2 || w.rows() % kRows != 0 || w.trainable || w.packed != nullptr)
      continue;
    const size_t n = w.rows(), k = w.cols(), gbytes = packed_isa::group_bytes(w.dtype, k), row_bytes = dtype_bytes(w.dtype, k);
    const size_t bytes = ((n / kRows) * gbytes + 63) / 64 * 64;  // aligned_alloc wants a multiple of the alignment
    auto buf = std::shared_ptr<uint8_t>(static_cast<uint8_t*>(std::aligned_alloc(64, bytes)), std::free);
    if (!buf) continue;
    const auto* src = static_cast<const uint8_t*>(w.data);
    for (size_t grp = 0; grp < n / kRows; ++grp)
      packed_isa::pack_group(w.dtype, src + grp * kRows * row_bytes, row_bytes, k, buf.get() + grp * gbytes);
    w.packed = buf.get();
    ws->keep(std::move(buf));
    if (release) release(w);
    ++packed;
  }
  return packed;
}

void linear_packed(ThreadPool* pool, const float* x, size_t m, size_t k, const Weight& w, float* y) {
  const size_t n = w.rows(), groups = n / kRows;
  thread_local PackedActivations xq;
  quantize_activations(x, m, k, w.dtype, &xq);
  // Tasks: row groups of W x slices of 64 activation rows.
  const size_t mslice = 64, mslices = (m + mslice - 1) / mslice;
  if (m * n * k < (size_t{1} << 17)) pool = nullptr;
  const PackedActivations& xr = xq;
  parallel_for(pool, groups * mslices, [&](size_t t) {
    const size_t grp = t % groups, ms = t / groups;
    const size_t m0 = ms * mslice, m1 = std::min(m, m0 + mslice);
    packed_product(xr, m0, m1, w, grp * kRows, kRows, y + m0 * n + grp * kRows, n);
  });
}

#if !defined(POCKETLLM_PACKED_X86) && !defined(POCKETLLM_PACKED_ARM)
// No packed kernels on this CPU family: nothing is packed, so these are never reached.
namespace packed_isa {
const char* detect(const char*) { return nullptr; }
bool handles(DType) { return false; }
size_t group_bytes(DType, size_t) { return 0; }
void pack_group(DType, const uint8_t*, size_t, size_t, uint8_t*) {}
}  // namespace packed_isa
void quantize_activations(const float*, size_t, size_t, DType, PackedActivations*) {}
void packed_product(const PackedActivations&, size_t, size_t, const Weight&, size_t, size_t, float*, size_t) {}
void unpack_rows(const Weight&, size_t, size_t, float*) {}
#endif

}  // namespace pocketllm
