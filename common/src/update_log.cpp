#include "pocketllm/common/update_log.h"

#include "pocketllm/common/json_util.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "pocketllm/common/tensor_ops.h"

namespace pocketllm {
namespace {

using nlohmann::json;

constexpr char kBinaryMagic[8] = {'P', 'L', 'L', 'M', 'L', 'O', 'G', '1'};
constexpr size_t kBinaryEntryBytes = 12;
constexpr size_t kBinaryHeaderBytes = 16;  // magic + u64 count

void put_le(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t get_le(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string seed_to_hex(uint64_t seed) {
  static const char* kDigits = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, seed >>= 4) s[static_cast<size_t>(i)] = kDigits[seed & 15];
  return s;
}

// Hex digits only, at most 16 of them.
static bool parse_hex_u64(std::string_view text, uint64_t* out) {
  if (text.empty() || text.size() > 16) return false;
  uint64_t v = 0;
  for (char c : text) {
    const int d = hex_digit(c);
    if (d < 0) return false;
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  *out = v;
  return true;
}

bool seed_from_hex(std::string_view text, uint64_t* seed) { return text.size() == 16 && parse_hex_u64(text, seed); }

bool parse_seed_text(std::string_view text, uint64_t* seed) {
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    text.remove_prefix(2);
    return parse_hex_u64(text, seed);
  }
  if (text.empty() || text.size() > 20) return false;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) return false;
    v = v * 10 + d;
  }
  *seed = v;
  return true;
}

Status UpdateLog::append(const UpdateEntry& entry) {
  if (!std::isfinite(entry.coeff))
    return invalid_argument("update entry for seed " + seed_to_hex(entry.seed) + " has a non-finite coeff");
  entries_.push_back(entry);
  return Status::ok();
}

UpdateLog UpdateLog::slice(size_t begin, size_t end) const {
  end = std::min(end, entries_.size());
  begin = std::min(begin, end);
  return UpdateLog(std::vector<UpdateEntry>(entries_.begin() + static_cast<std::ptrdiff_t>(begin),
                                            entries_.begin() + static_cast<std::ptrdiff_t>(end)));
}

std::string UpdateLog::to_json() const {
  json entries = json::array();
  for (const auto& e : entries_) {
    // A float32 widened to double is exact, and nlohmann prints doubles with 17 significant digits,
    // so any reader that parses to double and rounds to float32 gets the same coeff back.
    entries.push_back({{"seed", seed_to_hex(e.seed)}, {"coeff", static_cast<double>(e.coeff)}});
  }
  return json{{"format", "pocketllm.update_log"}, {"version", 1}, {"entries", std::move(entries)}}.dump();
}

Result<UpdateLog> UpdateLog::from_json(std::string_view text) {
  json doc = parse_json(text);
  if (doc.is_discarded()) return corrupt("update log: not valid JSON");
  if (!doc.is_object()) return corrupt("update log: expected a JSON object");
  if (!doc.contains("format") || doc["format"] != "pocketllm.update_log")
    return corrupt("update log: missing \"format\": \"pocketllm.update_log\"");
  if (!doc.contains("version") || !doc["version"].is_number_integer()) return corrupt("update log: missing integer \"version\"");
  if (doc["version"].get<int64_t>() != 1)
    return unsupported("update log: version " + doc["version"].dump() + " (this build reads version 1)");
  if (!doc.contains("entries") || !doc["entries"].is_array()) return corrupt("update log: missing \"entries\" array");
  UpdateLog log;
  log.entries_.reserve(doc["entries"].size());
  size_t i = 0;
  for (const json& e : doc["entries"]) {
    const std::string where = "update log: entry " + std::to_string(i++);
    if (!e.is_object() || !e.contains("seed") || !e.contains("coeff")) return corrupt(where + ": expected {\"seed\", \"coeff\"}");
    if (!e["seed"].is_string()) return corrupt(where + ": seed must be a 16-digit hex string");
    UpdateEntry entry;
    if (!seed_from_hex(e["seed"].get<std::string>(), &entry.seed))
      return corrupt(where + ": seed '" + e["seed"].get<std::string>() + "' is not 16 hex digits");
    if (!e["coeff"].is_number()) return corrupt(where + ": coeff must be a number");
    const double c = e["coeff"].get<double>();
    if (!std::isfinite(c) || std::fabs(c) > static_cast<double>(std::numeric_limits<float>::max()))
      return corrupt(where + ": coeff " + e["coeff"].dump() + " is outside the float32 range");
    entry.coeff = static_cast<float>(c);
    log.entries_.push_back(entry);
  }
  return log;
}

std::string UpdateLog::to_binary() const {
  std::string out(kBinaryMagic, sizeof kBinaryMagic);
  put_le(&out, entries_.size(), 8);
  for (const auto& e : entries_) {
    uint32_t bits;
    std::memcpy(&bits, &e.coeff, 4);
    put_le(&out, e.seed, 8);
    put_le(&out, bits, 4);
  }
  put_le(&out, fnv1a64(out.data(), out.size()), 8);
  return out;
}

Result<UpdateLog> UpdateLog::from_binary(std::string_view bytes) {
  if (bytes.size() < kBinaryHeaderBytes + 8) return corrupt("binary update log: " + std::to_string(bytes.size()) + " bytes, too short");
  if (std::memcmp(bytes.data(), kBinaryMagic, sizeof kBinaryMagic) != 0)
    return corrupt("binary update log: bad magic (expected PLLMLOG1)");
  const uint64_t count = get_le(bytes.data() + 8, 8);
  const uint64_t body = bytes.size() - kBinaryHeaderBytes - 8;
  if (count > body / kBinaryEntryBytes || count * kBinaryEntryBytes != body)
    return corrupt("binary update log: header says " + std::to_string(count) + " entries but the body holds " +
                   std::to_string(body) + " bytes (truncated?)");
  const uint64_t want = get_le(bytes.data() + bytes.size() - 8, 8);
  if (fnv1a64(bytes.data(), bytes.size() - 8) != want) return corrupt("binary update log: checksum mismatch");
  UpdateLog log;
  log.entries_.reserve(static_cast<size_t>(count));
  for (uint64_t i = 0; i < count; ++i) {
    const char* p = bytes.data() + kBinaryHeaderBytes + i * kBinaryEntryBytes;
    UpdateEntry e;
    e.seed = get_le(p, 8);
    const uint32_t bits = static_cast<uint32_t>(get_le(p + 8, 4));
    std::memcpy(&e.coeff, &bits, 4);
    if (!std::isfinite(e.coeff)) return corrupt("binary update log: entry " + std::to_string(i) + " has a non-finite coeff");
    log.entries_.push_back(e);
  }
  return log;
}

void replay_entries(ThreadPool* pool, Distribution dist, const UpdateEntry* entries, size_t count,
                    const std::vector<NamedTensor>& tensors) {
  // Tensor-major order: each element only ever sees its own entries in log order, so this equals
  // entry-major application bit for bit while touching each tensor's memory fewer times.
  for (const auto& t : tensors) {
    const uint64_t tag = tensor_tag(t.name);
    for_each_span(t, [&](size_t begin, size_t n) {
      apply_update_entries(pool, dist, entries, count, tag, t.data + begin, n, t.scale, begin);
    });
  }
}

}  // namespace pocketllm
