// safetensors files (https://huggingface.co/docs/safetensors): a validating, memory-mapped reader and
// an atomic writer. The reader checks the whole header before any tensor is touched, so a malformed
// file is an error naming the file and the tensor, never an out-of-bounds read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "pocketllm/common/dtype.h"
#include "pocketllm/common/file_util.h"
#include "pocketllm/common/status.h"

namespace pocketllm {

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t numel = 0;
  uint64_t file_offset = 0;  // absolute offset of the first byte in the file
  uint64_t nbytes = 0;
};

// Largest header the reader accepts. Real checkpoints have headers of a few hundred KiB.
inline constexpr uint64_t kMaxSafetensorsHeader = uint64_t{100} << 20;

class SafetensorsFile {
 public:
  static Result<SafetensorsFile> open(const std::string& path);
  // Same validation over bytes already in memory (tests, network payloads). The bytes are copied.
  static Result<SafetensorsFile> from_bytes(std::string bytes, std::string display_name);

  const std::string& path() const { return path_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in file order
  const TensorInfo* find(std::string_view name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  const uint8_t* raw(const TensorInfo& t) const { return base() + t.file_offset; }
  // Zero-copy float32 view, or nullptr when the tensor is not F32 or not 4-byte aligned in the file.
  const float* f32_view(const TensorInfo& t) const;
  // Elements [start, start+count) converted to float32 (F32, F16, BF16); the per-tile conversion
  // models use for weights stored in half precision.
  Status read_f32(const TensorInfo& t, uint64_t start, size_t count, float* out) const;

 private:
  Status parse();
  const uint8_t* base() const { return map_.data() != nullptr ? map_.data() : reinterpret_cast<const uint8_t*>(bytes_.data()); }
  size_t size() const { return map_.data() != nullptr ? map_.size() : bytes_.size(); }

  std::string path_;
  MappedFile map_;
  std::string bytes_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

struct TensorToWrite {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;  // numel(shape) * dtype_size(dtype) bytes
};

// Serialises tensors (in the given order) with optional string metadata. Data starts 64-byte aligned.
Result<std::string> serialize_safetensors(const std::vector<TensorToWrite>& tensors,
                                          const std::map<std::string, std::string>& metadata = {});
// Writes atomically: temporary file, fsync, rename, fsync of the directory.
Status write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                         const std::map<std::string, std::string>& metadata = {}, unsigned mode = 0644);

}  // namespace pocketllm
