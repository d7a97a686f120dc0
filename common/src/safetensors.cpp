#include "pocketllm/common/safetensors.h"

#include "pocketllm/common/json_util.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

namespace pocketllm {
namespace {

using nlohmann::json;

uint64_t read_le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// numel * size without overflow; false when it would not fit in 2^62.
bool checked_numel(const std::vector<int64_t>& shape, uint64_t* numel) {
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return false;
    if (d != 0 && n > (uint64_t{1} << 62) / static_cast<uint64_t>(d)) return false;
    n *= static_cast<uint64_t>(d);
  }
  *numel = n;
  return true;
}

}  // namespace

Result<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  auto map = MappedFile::open(path);
  if (!map) return map.status();
  SafetensorsFile f;
  f.path_ = path;
  f.map_ = std::move(map.value());
  POCKETLLM_RETURN_IF_ERROR(f.parse());
  return f;
}

Result<SafetensorsFile> SafetensorsFile::from_bytes(std::string bytes, std::string display_name) {
  SafetensorsFile f;
  f.path_ = std::move(display_name);
  f.bytes_ = std::move(bytes);
  POCKETLLM_RETURN_IF_ERROR(f.parse());
  return f;
}

// long: one pass over an untrusted header, each bound checked beside the field it guards; split, the checks would lose their order.
Status SafetensorsFile::parse() {
  const std::string& p = path_;
  const uint8_t* data = base();
  const uint64_t file_size = size();
  if (file_size < 8) return corrupt(p + ": " + std::to_string(file_size) + " bytes, too short for a safetensors header (truncated?)");
  const uint64_t header_len = read_le64(data);
  if (header_len > kMaxSafetensorsHeader)
    return corrupt(p + ": header length " + std::to_string(header_len) + " exceeds the " +
                   std::to_string(kMaxSafetensorsHeader) + "-byte limit (not a safetensors file?)");
  if (header_len > file_size - 8)
    return corrupt(p + ": header length " + std::to_string(header_len) + " runs past the end of the " +
                   std::to_string(file_size) + "-byte file (truncated?)");
  if (header_len < 2 || data[8] != '{')
    return corrupt(p + ": header is not a JSON object (not a safetensors file?)");

  // Detect duplicate tensor names: nlohmann::json keeps only the last of duplicate keys.
  std::set<std::string> top_keys;
  std::string duplicate;
  auto on_event = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1) {
      const std::string key = parsed.get<std::string>();
      if (!top_keys.insert(key).second && duplicate.empty()) duplicate = key;
    }
    return true;
  };
  if (!json_depth_within(std::string_view(reinterpret_cast<const char*>(data) + 8, header_len)))
    return corrupt(p + ": header nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  json header = json::parse(data + 8, data + 8 + header_len, on_event, /*allow_exceptions=*/false);
  if (header.is_discarded()) return corrupt(p + ": header is not valid JSON");
  if (!header.is_object()) return corrupt(p + ": header is not a JSON object");
  if (!duplicate.empty()) return corrupt(p + ": tensor '" + duplicate + "' appears twice in the header");

  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = file_size - data_start;
  tensors_.clear();
  index_.clear();
  metadata_.clear();
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) return corrupt(p + ": __metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) return corrupt(p + ": __metadata__ value '" + m.key() + "' is not a string");
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = p + ": tensor '" + name + "'";
    if (!v.is_object()) return corrupt(where + " is not an object");
    for (auto f = v.begin(); f != v.end(); ++f)
      if (f.key() != "dtype" && f.key() != "shape" && f.key() != "data_offsets")
        return corrupt(where + " has unknown field '" + f.key() + "'");
    if (!v.contains("dtype") || !v["dtype"].is_string()) return corrupt(where + " has no dtype string");
    if (!v.contains("shape") || !v["shape"].is_array()) return corrupt(where + " has no shape array");
    if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2)
      return corrupt(where + " has no data_offsets [begin, end]");
    TensorInfo t;
    t.name = name;
    const std::string dtype = v["dtype"].get<std::string>();
    if (!parse_dtype(dtype, &t.dtype)) return corrupt(where + " has unknown dtype '" + dtype + "'");
    if (v["shape"].size() > 16) return corrupt(where + " has " + std::to_string(v["shape"].size()) + " dimensions");
    for (const json& d : v["shape"]) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0) return corrupt(where + " has a shape entry that is not a non-negative integer");
      t.shape.push_back(d.get<int64_t>());
    }
    const json& offs = v["data_offsets"];
    if (!offs[0].is_number_unsigned() || !offs[1].is_number_unsigned())
      return corrupt(where + " has data_offsets that are not non-negative integers");
    const uint64_t begin = offs[0].get<uint64_t>(), end = offs[1].get<uint64_t>();
    if (begin > end) return corrupt(where + ": data_offsets begin " + std::to_string(begin) + " > end " + std::to_string(end));
    if (end > data_size)
      return corrupt(where + ": data_offsets end " + std::to_string(end) + " is past the end of the data (" +
                     std::to_string(data_size) + " bytes; truncated file?)");
    if (!checked_numel(t.shape, &t.numel)) return corrupt(where + " has a shape too large to address");
    const uint64_t expected = t.numel * dtype_size(t.dtype);
    if (end - begin != expected)
      return corrupt(where + ": shape and dtype " + dtype + " need " + std::to_string(expected) + " bytes but data_offsets cover " +
                     std::to_string(end - begin));
    t.file_offset = data_start + begin;
    t.nbytes = expected;
    index_[name] = tensors_.size();
    tensors_.push_back(std::move(t));
  }
  // No two tensors may share bytes.
  std::vector<const TensorInfo*> by_offset;
  for (const auto& t : tensors_)
    if (t.nbytes > 0) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->file_offset < b->file_offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const TensorInfo* a = by_offset[i - 1];
    const TensorInfo* b = by_offset[i];
    if (a->file_offset + a->nbytes > b->file_offset)
      return corrupt(p + ": tensors '" + a->name + "' and '" + b->name + "' overlap in the file");
  }
  return Status::ok();
}

const TensorInfo* SafetensorsFile::find(std::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const float* SafetensorsFile::f32_view(const TensorInfo& t) const {
  if (t.dtype != DType::kF32) return nullptr;
  const uint8_t* p = raw(t);
  if (reinterpret_cast<uintptr_t>(p) % alignof(float) != 0) return nullptr;
  return reinterpret_cast<const float*>(p);
}

Status SafetensorsFile::read_f32(const TensorInfo& t, uint64_t start, size_t count, float* out) const {
  if (start > t.numel || count > t.numel - start)
    return out_of_range(path_ + ": tensor '" + t.name + "': elements [" + std::to_string(start) + ", " +
                        std::to_string(start + count) + ") outside its " + std::to_string(t.numel));
  if (!dtype_is_float_weights(t.dtype))
    return unsupported(path_ + ": tensor '" + t.name + "' has dtype " + dtype_name(t.dtype) + "; expected F32, F16 or BF16");
  convert_to_f32(t.dtype, raw(t) + start * dtype_size(t.dtype), count, out);
  return Status::ok();
}

namespace {

// The 8-byte length + JSON header; *sizes receives each tensor's byte count.
Result<std::string> safetensors_header(const std::vector<TensorToWrite>& tensors,
                                       const std::map<std::string, std::string>& metadata, std::vector<uint64_t>* sizes) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    if (t.name.empty() || t.name == "__metadata__") return invalid_argument("safetensors writer: invalid tensor name '" + t.name + "'");
    if (!names.insert(t.name).second) return invalid_argument("safetensors writer: tensor '" + t.name + "' given twice");
    uint64_t numel = 0;
    if (!checked_numel(t.shape, &numel)) return invalid_argument("safetensors writer: tensor '" + t.name + "' has an invalid shape");
    const uint64_t nbytes = numel * dtype_size(t.dtype);
    if (nbytes > 0 && t.data == nullptr) return invalid_argument("safetensors writer: tensor '" + t.name + "' has no data");
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    sizes->push_back(nbytes);
  }
  std::string text = header.dump();
  // Pad with spaces (valid JSON whitespace) so the data section starts 64-byte aligned.
  while ((8 + text.size()) % 64 != 0) text.push_back(' ');
  std::string out;
  const uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out += text;
  return out;
}

}  // namespace

Result<std::string> serialize_safetensors(const std::vector<TensorToWrite>& tensors,
                                          const std::map<std::string, std::string>& metadata) {
  std::vector<uint64_t> sizes;
  auto header = safetensors_header(tensors, metadata, &sizes);
  if (!header) return header.status();
  std::string out = std::move(header.value());
  for (size_t i = 0; i < tensors.size(); ++i)
    out.append(static_cast<const char*>(tensors[i].data), static_cast<size_t>(sizes[i]));
  return out;
}

Status write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                         const std::map<std::string, std::string>& metadata, unsigned mode) {
  std::vector<uint64_t> sizes;
  auto header = safetensors_header(tensors, metadata, &sizes);
  if (!header) return header.status();
  std::vector<std::string_view> pieces{header.value()};
  for (size_t i = 0; i < tensors.size(); ++i)
    pieces.emplace_back(static_cast<const char*>(tensors[i].data), static_cast<size_t>(sizes[i]));
  return write_file_atomic(path, pieces, mode);
}

}  // namespace pocketllm
