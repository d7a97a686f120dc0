// GGUF v3 writer: key/values, tensor infos, then the tensor data, each tensor at the alignment. The data
// is produced tensor by tensor by the caller's callback and streamed to a temporary file that is
// fsynced and renamed into place.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "pocketllm/common/cancel.h"
#include "pocketllm/common/file_util.h"
#include "pocketllm/common/gguf.h"

namespace pocketllm::gguf {
namespace {

template <class T>
void append(std::string* out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out->append(b, sizeof(T));
}

void append_string(std::string* out, const std::string& s) {
  append<uint64_t>(out, s.size());
  out->append(s);
}

std::string typed(Type t) {
  std::string s;
  append<uint32_t>(&s, static_cast<uint32_t>(t));
  return s;
}

class TempFile {
 public:
  explicit TempFile(std::string path) : path_(std::move(path)), tmp_(path_ + ".tmp." + std::to_string(::getpid())) {}
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
  }
  Status open() {
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) return io_error("cannot create " + tmp_ + ": " + std::strerror(errno));
    return Status::ok();
  }
  Status write(const void* data, size_t n) {
    const auto* p = static_cast<const uint8_t*>(data);
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return io_error("cannot write " + tmp_ + ": " + std::strerror(errno));
      p += w;
      n -= static_cast<size_t>(w);
      written_ += static_cast<uint64_t>(w);
    }
    return Status::ok();
  }
  Status pad_to(uint64_t align) {
    static const uint8_t zeros[64] = {};
    while (written_ % align != 0) {
      const uint64_t n = std::min<uint64_t>(sizeof zeros, align - written_ % align);
      POCKETLLM_RETURN_IF_ERROR(write(zeros, static_cast<size_t>(n)));
    }
    return Status::ok();
  }
  Status commit() {
    if (::fsync(fd_) != 0) return io_error("cannot fsync " + tmp_ + ": " + std::strerror(errno));
    ::close(fd_);
    fd_ = -1;
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) return io_error("cannot rename " + tmp_ + " to " + path_ + ": " + std::strerror(errno));
    committed_ = true;
    return fsync_parent_dir(path_);
  }

 private:
  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
  uint64_t written_ = 0;
};

}  // namespace

void Writer::put(const std::string& key, std::string encoded) {
  for (auto& e : kv_) {
    if (e.key == key) {
      e.encoded = std::move(encoded);
      return;
    }
  }
  kv_.push_back({key, std::move(encoded)});
}

void Writer::set_u32(const std::string& key, uint32_t v) { std::string s = typed(Type::kU32); append(&s, v); put(key, s); }
void Writer::set_i32(const std::string& key, int32_t v) { std::string s = typed(Type::kI32); append(&s, v); put(key, s); }
void Writer::set_u64(const std::string& key, uint64_t v) { std::string s = typed(Type::kU64); append(&s, v); put(key, s); }
void Writer::set_f32(const std::string& key, float v) { std::string s = typed(Type::kF32); append(&s, v); put(key, s); }
void Writer::set_bool(const std::string& key, bool v) { std::string s = typed(Type::kBool); append<uint8_t>(&s, v ? 1 : 0); put(key, s); }
void Writer::set_string(const std::string& key, const std::string& v) { std::string s = typed(Type::kString); append_string(&s, v); put(key, s); }

void Writer::set_string_array(const std::string& key, const std::vector<std::string>& v) {
  std::string s = typed(Type::kArray);
  append<uint32_t>(&s, static_cast<uint32_t>(Type::kString));
  append<uint64_t>(&s, v.size());
  for (const auto& e : v) append_string(&s, e);
  put(key, s);
}

void Writer::set_f32_array(const std::string& key, const std::vector<float>& v) {
  std::string s = typed(Type::kArray);
  append<uint32_t>(&s, static_cast<uint32_t>(Type::kF32));
  append<uint64_t>(&s, v.size());
  for (float e : v) append(&s, e);
  put(key, s);
}

void Writer::set_i32_array(const std::string& key, const std::vector<int32_t>& v) {
  std::string s = typed(Type::kArray);
  append<uint32_t>(&s, static_cast<uint32_t>(Type::kI32));
  append<uint64_t>(&s, v.size());
  for (int32_t e : v) append(&s, e);
  put(key, s);
}

Status Writer::add_tensor(const std::string& name, std::vector<uint64_t> dims, DType dtype, Fill fill) {
  if (ggml_type_of(dtype) < 0) return unsupported(std::string("GGUF cannot store dtype ") + dtype_name(dtype));
  if (dims.empty() || dims.size() > 4) return invalid_argument("tensor '" + name + "' must have 1 to 4 dimensions");
  uint64_t numel = 1;
  for (uint64_t d : dims) numel *= d;
  if (dims[0] % dtype_block_size(dtype) != 0)
    return invalid_argument("tensor '" + name + "': rows of " + std::to_string(dims[0]) + " are not whole " + dtype_name(dtype) + " blocks");
  for (const auto& t : tensors_)
    if (t.name == name) return invalid_argument("tensor '" + name + "' added twice");
  tensors_.push_back({name, std::move(dims), dtype, dtype_bytes(dtype, numel), std::move(fill)});
  return Status::ok();
}

// long: the file in order — header, key/values, tensor infos, then each tensor streamed at its offset.
Status Writer::write(const std::string& path, uint32_t alignment) const {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) return invalid_argument("GGUF alignment must be a power of two");
  std::string head;
  append<uint32_t>(&head, kMagic);
  append<uint32_t>(&head, 3);
  append<uint64_t>(&head, tensors_.size());
  const bool custom_alignment = alignment != kDefaultAlignment;
  append<uint64_t>(&head, kv_.size() + (custom_alignment ? 1 : 0));
  for (const auto& e : kv_) {
    append_string(&head, e.key);
    head += e.encoded;
  }
  if (custom_alignment) {
    append_string(&head, "general.alignment");
    head += typed(Type::kU32);
    append<uint32_t>(&head, alignment);
  }
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    append_string(&head, t.name);
    append<uint32_t>(&head, static_cast<uint32_t>(t.dims.size()));
    for (uint64_t d : t.dims) append(&head, d);
    append<uint32_t>(&head, static_cast<uint32_t>(ggml_type_of(t.dtype)));
    append(&head, offset);
    offset = (offset + t.nbytes + alignment - 1) / alignment * alignment;
  }
  TempFile out(path);
  POCKETLLM_RETURN_IF_ERROR(out.open());
  POCKETLLM_RETURN_IF_ERROR(out.write(head.data(), head.size()));
  POCKETLLM_RETURN_IF_ERROR(out.pad_to(alignment));
  std::vector<uint8_t> buf;
  for (const auto& t : tensors_) {
    throw_if_cancelled();
    buf.assign(static_cast<size_t>(t.nbytes), 0);
    Status s = t.fill(buf.data());
    if (!s.is_ok()) return Status(s.code(), "tensor '" + t.name + "': " + s.message());
    POCKETLLM_RETURN_IF_ERROR(out.write(buf.data(), buf.size()));
    POCKETLLM_RETURN_IF_ERROR(out.pad_to(alignment));
  }
  return out.commit();
}

}  // namespace pocketllm::gguf
