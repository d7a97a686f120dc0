// The base model id: SHA-256 over the canonical tensors sorted by name (docs/update-log.md, "Model id").
// It depends only on canonical names, dtypes, shapes and bytes, not on the file format they came from.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pocketllm/common/dtype.h"

namespace pocketllm {

struct CanonicalTensorRef {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;  // dtype_bytes(dtype, numel) bytes, little-endian
};

// Lower-case hex SHA-256. Order of `tensors` does not matter (they are sorted by name bytewise).
std::string compute_model_id(std::vector<CanonicalTensorRef> tensors);

}  // namespace pocketllm
