// GGUF (ggml's model file format, versions 2 and 3): a zero-copy reader over a memory map and a
// streaming writer. docs/gguf.md describes the layout, the validation the reader applies and the
// block formats. This is the container only: what the tensors mean (names, hyper-parameters, the
// tokenizer) is the engine's loader (client/src/loader_gguf.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "pocketllm/common/dtype.h"
#include "pocketllm/common/status.h"

namespace pocketllm::gguf {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr uint32_t kDefaultAlignment = 32;

enum class Type : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7, kString = 8, kArray = 9,
  kU64 = 10, kI64 = 11, kF64 = 12,
};
const char* type_name(Type t);

// ggml tensor type ids (ggml.h's enum ggml_type) of the types pocketllm reads; -1 when none.
int ggml_type_of(DType t);
// The DType of a ggml type id, false for ids pocketllm does not read (the name is still reported).
bool dtype_of_ggml_type(uint32_t ggml_type, DType* out);
const char* ggml_type_name(uint32_t ggml_type);  // "Q5_K", ..., "type 99" style names are not returned: "?"

// One metadata value. Scalars are decoded; arrays keep a view of their bytes in the file (numbers) or
// views of their strings, so a 150 000-entry vocabulary costs no copy until it is asked for.
struct Value {
  Type type = Type::kU8;
  uint64_t u = 0;   // unsigned integers and bool
  int64_t i = 0;    // signed integers
  double f = 0.0;   // floats
  std::string_view str;  // kString (a view into the file)
  // kArray
  Type elem = Type::kU8;
  uint64_t count = 0;
  const uint8_t* array_data = nullptr;  // numeric arrays: count little-endian elements
  std::vector<std::string_view> strings;  // string arrays
};

struct TensorInfo {
  std::string name;
  std::vector<uint64_t> dims;  // ggml order: dims[0] is the innermost (a row's length)
  uint32_t ggml_type = 0;
  DType dtype = DType::kF32;
  uint64_t offset = 0;  // from the start of the data section
  uint64_t nbytes = 0;
  const uint8_t* data = nullptr;
  uint64_t numel() const;
};

class File {
 public:
  // Maps and validates `path`. Every length, count, type, offset and size is checked against the file.
  static Result<File> open(const std::string& path);
  // Validates `size` bytes at `data`, kept alive by `keep` (the fuzz target and tests use this).
  static Result<File> parse(const uint8_t* data, size_t size, std::string display_name, std::shared_ptr<void> keep);

  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  const std::string& path() const { return path_; }
  const std::shared_ptr<void>& keep_alive() const { return keep_; }
  const std::map<std::string, Value, std::less<>>& metadata() const { return kv_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* tensor(std::string_view name) const;
  const Value* find(std::string_view key) const;

  // Typed reads with a clear error naming the file and key: integers of any width and sign convert when
  // the value fits; floats from F32/F64.
  Result<uint64_t> get_uint(std::string_view key) const;
  Result<double> get_float(std::string_view key) const;
  Result<bool> get_bool(std::string_view key) const;
  Result<std::string> get_string(std::string_view key) const;
  Result<std::vector<std::string_view>> get_string_array(std::string_view key) const;
  Result<std::vector<float>> get_float_array(std::string_view key) const;
  Result<std::vector<int64_t>> get_int_array(std::string_view key) const;

 private:
  std::string path_;
  std::shared_ptr<void> keep_;
  uint32_t version_ = 0;
  uint32_t alignment_ = kDefaultAlignment;
  std::map<std::string, Value, std::less<>> kv_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> by_name_;
  friend class Parser;
};

// Writes a GGUF v3 file: metadata in insertion order, tensors in insertion order at `alignment`.
// Tensor bytes are produced by a callback while the file is written, so a conversion never holds a
// second copy of the model. The file appears atomically (temp + fsync + rename).
class Writer {
 public:
  void set_u32(const std::string& key, uint32_t v);
  void set_i32(const std::string& key, int32_t v);
  void set_u64(const std::string& key, uint64_t v);
  void set_f32(const std::string& key, float v);
  void set_bool(const std::string& key, bool v);
  void set_string(const std::string& key, const std::string& v);
  void set_string_array(const std::string& key, const std::vector<std::string>& v);
  void set_f32_array(const std::string& key, const std::vector<float>& v);
  void set_i32_array(const std::string& key, const std::vector<int32_t>& v);

  // `fill(out)` writes the tensor's dtype_bytes(dtype, numel) bytes into `out` (already sized).
  using Fill = std::function<Status(uint8_t* out)>;
  Status add_tensor(const std::string& name, std::vector<uint64_t> dims, DType dtype, Fill fill);

  Status write(const std::string& path, uint32_t alignment = kDefaultAlignment) const;

 private:
  struct Entry {
    std::string key;
    std::string encoded;  // type + value, encoded
  };
  struct Pending {
    std::string name;
    std::vector<uint64_t> dims;
    DType dtype;
    uint64_t nbytes;
    Fill fill;
  };
  void put(const std::string& key, std::string encoded);
  std::vector<Entry> kv_;
  std::vector<Pending> tensors_;
};

}  // namespace pocketllm::gguf
