// Files: whole reads, atomic writes (temp + fsync + rename + fsync of the directory), read-only maps.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pocketllm/common/status.h"

namespace pocketllm {

Result<std::string> read_file(const std::string& path, size_t max_bytes = size_t{1} << 31);

// Replaces `path` with `bytes` so that a crash leaves either the old file or the new one, never a mix.
// The file is created with `mode` (before the umask) — never chmod-ed after it is visible.
Status write_file_atomic(const std::string& path, std::string_view bytes, unsigned mode = 0644);
// The same with the content given as consecutive pieces (no concatenated copy is made).
Status write_file_atomic(const std::string& path, const std::vector<std::string_view>& pieces, unsigned mode = 0644);

// fsync of the directory holding `path`, so a rename or create in it is durable.
Status fsync_parent_dir(const std::string& path);

// A read-only memory map of a whole file. Movable, not copyable.
class MappedFile {
 public:
  MappedFile() = default;
  ~MappedFile();
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  static Result<MappedFile> open(const std::string& path);

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  void reset();
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

}  // namespace pocketllm
