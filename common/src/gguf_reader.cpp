// GGUF reader: parse and validate before anything is used. A hostile file gets a clear error naming
// the file and the key or tensor; no length, count or offset is trusted before it is checked against
// the bytes that remain.
#include <cstring>
#include <limits>
#include <set>

#include "pocketllm/common/file_util.h"
#include "pocketllm/common/gguf.h"

namespace pocketllm::gguf {
namespace {

struct GgmlType {
  uint32_t id;
  const char* name;
  int dtype;  // index into DType, -1 when pocketllm does not read it
};
// ggml.h's enum ggml_type (ids 4, 5 were Q4_2/Q4_3, removed upstream).
constexpr GgmlType kGgmlTypes[] = {
    {0, "F32", static_cast<int>(DType::kF32)},    {1, "F16", static_cast<int>(DType::kF16)},
    {2, "Q4_0", static_cast<int>(DType::kQ4_0)},  {3, "Q4_1", static_cast<int>(DType::kQ4_1)},
    {6, "Q5_0", static_cast<int>(DType::kQ5_0)},  {7, "Q5_1", static_cast<int>(DType::kQ5_1)},
    {8, "Q8_0", static_cast<int>(DType::kQ8_0)},  {9, "Q8_1", -1},
    {10, "Q2_K", static_cast<int>(DType::kQ2_K)}, {11, "Q3_K", static_cast<int>(DType::kQ3_K)},
    {12, "Q4_K", static_cast<int>(DType::kQ4_K)}, {13, "Q5_K", static_cast<int>(DType::kQ5_K)},
    {14, "Q6_K", static_cast<int>(DType::kQ6_K)}, {15, "Q8_K", -1},
    {16, "IQ2_XXS", -1}, {17, "IQ2_XS", -1}, {18, "IQ3_XXS", -1}, {19, "IQ1_S", -1}, {20, "IQ4_NL", -1},
    {21, "IQ3_S", -1},   {22, "IQ2_S", -1},  {23, "IQ4_XS", -1},  {24, "I8", -1},    {25, "I16", -1},
    {26, "I32", -1},     {27, "I64", -1},    {28, "F64", -1},     {29, "IQ1_M", -1},
    {30, "BF16", static_cast<int>(DType::kBF16)}, {34, "TQ1_0", -1}, {35, "TQ2_0", -1},
};

size_t scalar_size(Type t) {
  switch (t) {
    case Type::kU8: case Type::kI8: case Type::kBool: return 1;
    case Type::kU16: case Type::kI16: return 2;
    case Type::kU32: case Type::kI32: case Type::kF32: return 4;
    case Type::kU64: case Type::kI64: case Type::kF64: return 8;
    default: return 0;
  }
}

bool known_type(uint32_t t) { return t <= static_cast<uint32_t>(Type::kF64); }

}  // namespace

const char* type_name(Type t) {
  static const char* const kNames[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};
  const auto i = static_cast<uint32_t>(t);
  return i < sizeof kNames / sizeof kNames[0] ? kNames[i] : "?";
}

int ggml_type_of(DType t) {
  for (const auto& g : kGgmlTypes)
    if (g.dtype == static_cast<int>(t)) return static_cast<int>(g.id);
  return -1;
}

bool dtype_of_ggml_type(uint32_t ggml_type, DType* out) {
  for (const auto& g : kGgmlTypes) {
    if (g.id == ggml_type && g.dtype >= 0) {
      *out = static_cast<DType>(g.dtype);
      return true;
    }
  }
  return false;
}

const char* ggml_type_name(uint32_t ggml_type) {
  for (const auto& g : kGgmlTypes)
    if (g.id == ggml_type) return g.name;
  return "?";
}

uint64_t TensorInfo::numel() const {
  uint64_t n = 1;
  for (uint64_t d : dims) n *= d;
  return n;
}

// Reads the file front to back; every read is bounds-checked.
class Parser {
 public:
  Parser(const uint8_t* data, size_t size, std::string name) : p_(data), size_(size), name_(std::move(name)) {}

  Status run(File* f);

 private:
  size_t left() const { return size_ - pos_; }
  Status need(uint64_t n, const std::string& what) {
    if (n > left())
      return corrupt(name_ + ": " + what + " needs " + std::to_string(n) + " bytes at offset " + std::to_string(pos_) +
                     ", but the file has " + std::to_string(left()) + " left (truncated?)");
    return Status::ok();
  }
  template <class T>
  Status read(T* out, const std::string& what) {
    POCKETLLM_RETURN_IF_ERROR(need(sizeof(T), what));
    std::memcpy(out, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return Status::ok();
  }
  Status read_string(std::string_view* out, const std::string& what) {
    uint64_t len = 0;
    POCKETLLM_RETURN_IF_ERROR(read(&len, what + " length"));
    POCKETLLM_RETURN_IF_ERROR(need(len, what + " (" + std::to_string(len) + " bytes)"));
    *out = std::string_view(reinterpret_cast<const char*>(p_ + pos_), static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return Status::ok();
  }
  Status read_value(Type type, Value* v, const std::string& key, int depth);
  Status read_array(Value* v, const std::string& key, int depth);
  Status read_tensor_info(File* f, uint64_t index);
  Status place_tensors(File* f);

  const uint8_t* p_;
  size_t size_;
  size_t pos_ = 0;
  std::string name_;
};

Status Parser::read_value(Type type, Value* v, const std::string& key, int depth) {
  v->type = type;
  const std::string what = "value of '" + key + "'";
  switch (type) {
    case Type::kU8: { uint8_t x{}; POCKETLLM_RETURN_IF_ERROR(read(&x, what)); v->u = x; v->i = x; return Status::ok(); }
    case Type::kI8: { int8_t x{}; POCKETLLM_RETURN_IF_ERROR(read(&x, what)); v->i = x; return Status::ok(); }
    case Type::kU16: { uint16_t x{}; POCKETLLM_RETURN_IF_ERROR(read(&x, what)); v->u = x; v->i = x; return Status::ok(); }
    case Type::kI16: { int16_t x{}; POCKETLLM_RETURN_IF_ERROR(read(&x, what)); v->i = x; return Status::ok(); }
    case Type::kU32: { uint32_t x{}; POCKETLLM_RETURN_IF_ERROR(read(&x, what)); v->u = x; v->i = x; return Status::ok(); }
    case Type::kI32: { int32_t x{}; POCKETLLM_RETURN_IF_ERROR(read(&x, what)); v->i = x; return Status::ok(); }
    case Type::kU64: { uint64_t x{}; POCKETLLM_RETURN_IF_ERROR(read(&x, what)); v->u = x; return Status::ok(); }
    case Type::kI64: { int64_t x{}; POCKETLLM_RETURN_IF_ERROR(read(&x, what)); v->i = x; return Status::ok(); }
    case Type::kF32: { float x{}; POCKETLLM_RETURN_IF_ERROR(read(&x, what)); v->f = x; return Status::ok(); }
    case Type::kF64: { double x{}; POCKETLLM_RETURN_IF_ERROR(read(&x, what)); v->f = x; return Status::ok(); }
    case Type::kBool: {
      uint8_t x = 0;
      POCKETLLM_RETURN_IF_ERROR(read(&x, what));
      if (x > 1) return corrupt(name_ + ": bool " + what + " is " + std::to_string(x) + ", not 0 or 1");
      v->u = x;
      return Status::ok();
    }
    case Type::kString: return read_string(&v->str, what);
    case Type::kArray: return read_array(v, key, depth);
  }
  return corrupt(name_ + ": '" + key + "' has unknown value type " + std::to_string(static_cast<uint32_t>(type)));
}

Status Parser::read_array(Value* v, const std::string& key, int depth) {
  if (depth > 0) return unsupported(name_ + ": '" + key + "' is an array of arrays, which no model metadata uses");
  uint32_t elem = 0;
  POCKETLLM_RETURN_IF_ERROR(read(&elem, "element type of '" + key + "'"));
  if (!known_type(elem)) return corrupt(name_ + ": array '" + key + "' has unknown element type " + std::to_string(elem));
  v->elem = static_cast<Type>(elem);
  POCKETLLM_RETURN_IF_ERROR(read(&v->count, "length of '" + key + "'"));
  if (v->elem == Type::kArray) return unsupported(name_ + ": '" + key + "' is an array of arrays, which no model metadata uses");
  if (v->elem == Type::kString) {
    // Each string takes at least its 8-byte length: a count beyond that is a lie, refused before reserving.
    if (v->count > left() / 8)
      return corrupt(name_ + ": array '" + key + "' claims " + std::to_string(v->count) + " strings; the file has room for at most " +
                     std::to_string(left() / 8));
    v->strings.reserve(static_cast<size_t>(v->count));
    for (uint64_t i = 0; i < v->count; ++i) {
      std::string_view s;
      POCKETLLM_RETURN_IF_ERROR(read_string(&s, "element " + std::to_string(i) + " of '" + key + "'"));
      v->strings.push_back(s);
    }
    return Status::ok();
  }
  const size_t es = scalar_size(v->elem);
  if (v->count > left() / es)
    return corrupt(name_ + ": array '" + key + "' of " + std::to_string(v->count) + " " + type_name(v->elem) +
                   " runs past the end of the file");
  v->array_data = p_ + pos_;
  pos_ += static_cast<size_t>(v->count * es);
  if (v->elem == Type::kBool)
    for (uint64_t i = 0; i < v->count; ++i)
      if (v->array_data[i] > 1) return corrupt(name_ + ": bool array '" + key + "' holds " + std::to_string(v->array_data[i]));
  return Status::ok();
}

Status Parser::read_tensor_info(File* f, uint64_t index) {
  const std::string what = "tensor info " + std::to_string(index);
  std::string_view name;
  POCKETLLM_RETURN_IF_ERROR(read_string(&name, what + " name"));
  TensorInfo t;
  t.name = std::string(name);
  const std::string tw = "tensor '" + t.name + "'";
  uint32_t n_dims = 0;
  POCKETLLM_RETURN_IF_ERROR(read(&n_dims, tw + " dimension count"));
  if (n_dims == 0 || n_dims > 4) return corrupt(name_ + ": " + tw + " has " + std::to_string(n_dims) + " dimensions (1 to 4 allowed)");
  uint64_t numel = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    uint64_t dim = 0;
    POCKETLLM_RETURN_IF_ERROR(read(&dim, tw + " dimension"));
    if (dim == 0 || dim > (uint64_t{1} << 40)) return corrupt(name_ + ": " + tw + " has dimension " + std::to_string(dim));
    if (numel > (uint64_t{1} << 50) / dim) return corrupt(name_ + ": " + tw + " has more elements than any file can hold (dimension overflow)");
    numel *= dim;
    t.dims.push_back(dim);
  }
  POCKETLLM_RETURN_IF_ERROR(read(&t.ggml_type, tw + " type"));
  POCKETLLM_RETURN_IF_ERROR(read(&t.offset, tw + " offset"));
  if (!dtype_of_ggml_type(t.ggml_type, &t.dtype)) {
    const char* known = ggml_type_name(t.ggml_type);
    if (std::strcmp(known, "?") == 0) return corrupt(name_ + ": " + tw + " has unknown ggml type " + std::to_string(t.ggml_type));
    return unsupported(name_ + ": " + tw + " is " + known + ", which pocketllm does not read (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K … Q6_K)");
  }
  const size_t block = dtype_block_size(t.dtype);
  if (t.dims[0] % block != 0)
    return corrupt(name_ + ": " + tw + " rows of " + std::to_string(t.dims[0]) + " elements are not whole " + dtype_name(t.dtype) +
                   " blocks of " + std::to_string(block));
  t.nbytes = dtype_bytes(t.dtype, numel);
  if (f->by_name_.count(t.name)) return corrupt(name_ + ": tensor '" + t.name + "' appears twice");
  f->by_name_[t.name] = f->tensors_.size();
  f->tensors_.push_back(std::move(t));
  return Status::ok();
}

Status Parser::place_tensors(File* f) {
  const uint64_t align = f->alignment_;
  const uint64_t data_start = (pos_ + align - 1) / align * align;
  if (data_start > size_ && !f->tensors_.empty())
    return corrupt(name_ + ": the data section would start at " + std::to_string(data_start) + ", past the end of the file");
  const uint64_t data_size = data_start <= size_ ? size_ - data_start : 0;
  for (auto& t : f->tensors_) {
    const std::string tw = "tensor '" + t.name + "'";
    if (t.offset % align != 0)
      return corrupt(name_ + ": " + tw + " offset " + std::to_string(t.offset) + " is not a multiple of the alignment " + std::to_string(align));
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      return corrupt(name_ + ": " + tw + " (" + std::to_string(t.nbytes) + " bytes at data offset " + std::to_string(t.offset) +
                     ") runs past the end of the file (data section of " + std::to_string(data_size) + " bytes; truncated?)");
    t.data = p_ + data_start + t.offset;
  }
  return Status::ok();
}

// long: the file's fixed order (header, key/values, tensor infos, data), one check per field.
Status Parser::run(File* f) {
  uint32_t magic = 0;
  POCKETLLM_RETURN_IF_ERROR(read(&magic, "magic"));
  if (magic != kMagic) return corrupt(name_ + ": not a GGUF file (bad magic)");
  POCKETLLM_RETURN_IF_ERROR(read(&f->version_, "version"));
  if (f->version_ == 1) return unsupported(name_ + ": GGUF version 1 (32-bit lengths) is not read; convert it with a newer llama.cpp");
  if (f->version_ != 2 && f->version_ != 3)
    return unsupported(name_ + ": GGUF version " + std::to_string(f->version_) + " (versions 2 and 3 are read)");
  uint64_t n_tensors = 0, n_kv = 0;
  POCKETLLM_RETURN_IF_ERROR(read(&n_tensors, "tensor count"));
  POCKETLLM_RETURN_IF_ERROR(read(&n_kv, "metadata count"));
  // A key/value takes at least 8 (key length) + 4 (type) + 1 bytes, a tensor info at least 8 + 4 + 8 + 4 + 8.
  if (n_kv > left() / 13) return corrupt(name_ + ": claims " + std::to_string(n_kv) + " metadata entries; the file is too small for them");
  if (n_tensors > left() / 32) return corrupt(name_ + ": claims " + std::to_string(n_tensors) + " tensors; the file is too small for them");
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string_view key;
    POCKETLLM_RETURN_IF_ERROR(read_string(&key, "metadata key " + std::to_string(i)));
    if (key.empty()) return corrupt(name_ + ": metadata key " + std::to_string(i) + " is empty");
    uint32_t type = 0;
    POCKETLLM_RETURN_IF_ERROR(read(&type, "type of '" + std::string(key) + "'"));
    if (!known_type(type)) return corrupt(name_ + ": '" + std::string(key) + "' has unknown value type " + std::to_string(type));
    Value v;
    POCKETLLM_RETURN_IF_ERROR(read_value(static_cast<Type>(type), &v, std::string(key), 0));
    if (f->kv_.count(key)) return corrupt(name_ + ": metadata key '" + std::string(key) + "' appears twice");
    f->kv_.emplace(std::string(key), std::move(v));
  }
  if (const Value* a = f->find("general.alignment")) {
    const bool integer = a->type == Type::kU32 || a->type == Type::kU64 || a->type == Type::kI32;
    const uint64_t al = a->type == Type::kI32 ? static_cast<uint64_t>(a->i) : a->u;
    if (!integer || al == 0 || (al & (al - 1)) != 0 || al > (1u << 20) || (a->type == Type::kI32 && a->i <= 0))
      return corrupt(name_ + ": general.alignment must be a power of two up to 1 MiB");
    f->alignment_ = static_cast<uint32_t>(al);
  }
  for (uint64_t i = 0; i < n_tensors; ++i) POCKETLLM_RETURN_IF_ERROR(read_tensor_info(f, i));
  return place_tensors(f);
}

Result<File> File::parse(const uint8_t* data, size_t size, std::string display_name, std::shared_ptr<void> keep) {
  File f;
  f.path_ = display_name;
  f.keep_ = std::move(keep);
  Parser parser(data, size, std::move(display_name));
  POCKETLLM_RETURN_IF_ERROR(parser.run(&f));
  return f;
}

Result<File> File::open(const std::string& path) {
  auto mapped = MappedFile::open(path);
  if (!mapped) return mapped.status();
  auto file = std::make_shared<MappedFile>(std::move(mapped.value()));
  const uint8_t* data = file->data();
  const size_t size = file->size();
  return parse(data, size, path, std::move(file));
}

const TensorInfo* File::tensor(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

const Value* File::find(std::string_view key) const {
  auto it = kv_.find(key);
  return it == kv_.end() ? nullptr : &it->second;
}

Result<uint64_t> File::get_uint(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return not_found(path_ + ": metadata key '" + std::string(key) + "' is missing");
  switch (v->type) {
    case Type::kU8: case Type::kU16: case Type::kU32: case Type::kU64: return v->u;
    case Type::kI8: case Type::kI16: case Type::kI32: case Type::kI64:
      if (v->i >= 0) return static_cast<uint64_t>(v->i);
      return corrupt(path_ + ": '" + std::string(key) + "' is negative (" + std::to_string(v->i) + ")");
    default: return corrupt(path_ + ": '" + std::string(key) + "' is a " + type_name(v->type) + ", expected an integer");
  }
}

Result<double> File::get_float(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return not_found(path_ + ": metadata key '" + std::string(key) + "' is missing");
  if (v->type != Type::kF32 && v->type != Type::kF64)
    return corrupt(path_ + ": '" + std::string(key) + "' is a " + type_name(v->type) + ", expected a float");
  return v->f;
}

Result<bool> File::get_bool(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return not_found(path_ + ": metadata key '" + std::string(key) + "' is missing");
  if (v->type != Type::kBool) return corrupt(path_ + ": '" + std::string(key) + "' is a " + type_name(v->type) + ", expected a bool");
  return v->u != 0;
}

Result<std::string> File::get_string(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return not_found(path_ + ": metadata key '" + std::string(key) + "' is missing");
  if (v->type != Type::kString) return corrupt(path_ + ": '" + std::string(key) + "' is a " + type_name(v->type) + ", expected a string");
  return std::string(v->str);
}

Result<std::vector<std::string_view>> File::get_string_array(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return not_found(path_ + ": metadata key '" + std::string(key) + "' is missing");
  if (v->type != Type::kArray || v->elem != Type::kString)
    return corrupt(path_ + ": '" + std::string(key) + "' is not an array of strings");
  return v->strings;
}

Result<std::vector<float>> File::get_float_array(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return not_found(path_ + ": metadata key '" + std::string(key) + "' is missing");
  if (v->type != Type::kArray || (v->elem != Type::kF32 && v->elem != Type::kF64))
    return corrupt(path_ + ": '" + std::string(key) + "' is not an array of floats");
  std::vector<float> out(static_cast<size_t>(v->count));
  for (size_t i = 0; i < out.size(); ++i) {
    if (v->elem == Type::kF32) std::memcpy(&out[i], v->array_data + 4 * i, 4);
    else {
      double d;
      std::memcpy(&d, v->array_data + 8 * i, 8);
      out[i] = static_cast<float>(d);
    }
  }
  return out;
}

Result<std::vector<int64_t>> File::get_int_array(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return not_found(path_ + ": metadata key '" + std::string(key) + "' is missing");
  const size_t es = scalar_size(v->elem);
  const bool integer = v->type == Type::kArray && v->elem != Type::kF32 && v->elem != Type::kF64 && v->elem != Type::kBool && es > 0;
  if (!integer) return corrupt(path_ + ": '" + std::string(key) + "' is not an array of integers");
  std::vector<int64_t> out(static_cast<size_t>(v->count));
  for (size_t i = 0; i < out.size(); ++i) {
    const uint8_t* e = v->array_data + es * i;
    switch (v->elem) {
      case Type::kU8: out[i] = e[0]; break;
      case Type::kI8: out[i] = static_cast<int8_t>(e[0]); break;
      case Type::kU16: { uint16_t x{}; std::memcpy(&x, e, 2); out[i] = x; break; }
      case Type::kI16: { int16_t x{}; std::memcpy(&x, e, 2); out[i] = x; break; }
      case Type::kU32: { uint32_t x{}; std::memcpy(&x, e, 4); out[i] = x; break; }
      case Type::kI32: { int32_t x{}; std::memcpy(&x, e, 4); out[i] = x; break; }
      case Type::kU64: { uint64_t x{}; std::memcpy(&x, e, 8); out[i] = static_cast<int64_t>(x); break; }
      default: { int64_t x{}; std::memcpy(&x, e, 8); out[i] = x; break; }
    }
  }
  return out;
}

}  // namespace pocketllm::gguf
