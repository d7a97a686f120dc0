#include "pocketllm/common/model_id.h"

#include "pocketllm/common/cancel.h"

#include <algorithm>
#include <cstring>

#include "pocketllm/common/sha256.h"

namespace pocketllm {

std::string compute_model_id(std::vector<CanonicalTensorRef> tensors) {
  std::sort(tensors.begin(), tensors.end(),
            [](const CanonicalTensorRef& a, const CanonicalTensorRef& b) { return a.name < b.name; });
  Sha256 h;
  h.update("pocketllm-model-id-v1", std::strlen("pocketllm-model-id-v1"));
  h.update_u64le(tensors.size());
  for (const auto& t : tensors) {
    throw_if_cancelled();  // the id reads every byte of the weights: the longest part of a load
    h.update_u64le(t.name.size());
    h.update(t.name);
    const std::string dtype = dtype_name(t.dtype);
    h.update_u64le(dtype.size());
    h.update(dtype);
    h.update_u64le(t.shape.size());
    uint64_t numel = 1;
    for (int64_t d : t.shape) {
      h.update_u64le(static_cast<uint64_t>(d));
      numel *= static_cast<uint64_t>(d);
    }
    const uint64_t nbytes = dtype_bytes(t.dtype, numel);
    h.update_u64le(nbytes);
    // In pieces, so a cancelled load stops within a few milliseconds even inside a large tensor.
    const auto* bytes = static_cast<const uint8_t*>(t.data);
    for (uint64_t done = 0; done < nbytes;) {
      const uint64_t n = std::min<uint64_t>(nbytes - done, uint64_t{8} << 20);
      h.update(bytes + done, static_cast<size_t>(n));
      done += n;
      throw_if_cancelled();
    }
  }
  return to_hex(h.finish());
}

}  // namespace pocketllm
