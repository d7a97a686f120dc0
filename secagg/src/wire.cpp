#include "pocketllm/secagg/wire.h"

#include <cmath>
#include <initializer_list>

#include "pocketllm/common/sha256.h"  // to_hex

namespace pocketllm::secagg {

using nlohmann::json;

std::string bytes_to_hex(const uint8_t* data, size_t n) { return to_hex(data, n); }

bool bytes_from_hex(const std::string& hex, size_t n, uint8_t* out) {
  if (hex.size() != 2 * n) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < n; ++i) {
    const int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

namespace {

Status bad(const std::string& field, const std::string& why) { return invalid_argument("secagg message: " + field + ": " + why); }

Status only_fields(const json& j, std::initializer_list<const char*> known, const std::string& what) {
  if (!j.is_object()) return bad(what, "must be an object");
  for (const auto& [k, v] : j.items()) {
    bool ok = false;
    for (const char* f : known) ok |= k == f;
    if (!ok) return bad(what, "unknown field '" + k + "'");
  }
  return Status::ok();
}

Status read_key(const json& j, const char* field, Key32* out) {
  if (!j.contains(field) || !j[field].is_string() || !bytes_from_hex(j[field].get<std::string>(), 32, out->data()))
    return bad(field, "must be 64 lower-case hex digits");
  return Status::ok();
}

Status read_bytes(const json& j, const char* field, size_t n, Bytes* out) {
  out->resize(n);
  if (!j.contains(field) || !j[field].is_string() || !bytes_from_hex(j[field].get<std::string>(), n, out->data()))
    return bad(field, "must be " + std::to_string(2 * n) + " lower-case hex digits");
  return Status::ok();
}

template <class T>
Status read_uint(const json& j, const char* field, T max, T* out) {
  if (!j.contains(field) || !j[field].is_number_unsigned()) return bad(field, "must be a non-negative integer");
  const uint64_t v = j[field].get<uint64_t>();
  if (v > static_cast<uint64_t>(max)) return bad(field, "must be at most " + std::to_string(max));
  *out = static_cast<T>(v);
  return Status::ok();
}

Status read_word(const json& v, const std::string& field, uint64_t* out) {
  uint8_t b[8];
  if (!v.is_string() || !bytes_from_hex(v.get<std::string>(), 8, b)) return bad(field, "must be 16 lower-case hex digits");
  *out = 0;
  for (uint8_t x : b) *out = (*out << 8) | x;
  return Status::ok();
}

std::string word_hex(uint64_t w) {
  uint8_t b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(w >> (56 - 8 * i));
  return bytes_to_hex(b, 8);
}

Status read_list(const json& j, const char* field, size_t max, const json** out) {
  if (!j.contains(field) || !j[field].is_array()) return bad(field, "must be an array");
  if (j[field].size() > max) return bad(field, "more than " + std::to_string(max) + " items");
  *out = &j[field];
  return Status::ok();
}

}  // namespace

json to_json(const RoundConfig& c) {
  return {{"round_id", word_hex(c.round_id)},
          {"graph_seed", word_hex(c.graph_seed)},
          {"min_survivors", c.min_survivors},
          {"degree", c.degree},
          {"share_threshold", c.share_threshold},
          {"tau", c.input.tau},
          {"scale_bits", c.input.scale_bits},
          {"bound", c.input.bound},
          {"max_weight", c.input.max_weight},
          {"uniform_weights", c.input.uniform_weights},
          {"noise_variance", c.input.noise_variance}};
}

Result<RoundConfig> parse_round_config(const json& j) {
  POCKETLLM_RETURN_IF_ERROR(only_fields(j, {"round_id", "graph_seed", "min_survivors", "degree", "share_threshold", "tau", "scale_bits",
                                            "bound", "max_weight", "uniform_weights", "noise_variance"},
                                        "secagg"));
  RoundConfig c;
  if (!j.contains("round_id") || !j.contains("graph_seed")) return bad("secagg", "round_id and graph_seed are required");
  POCKETLLM_RETURN_IF_ERROR(read_word(j["round_id"], "round_id", &c.round_id));
  POCKETLLM_RETURN_IF_ERROR(read_word(j["graph_seed"], "graph_seed", &c.graph_seed));
  POCKETLLM_RETURN_IF_ERROR(read_uint<uint32_t>(j, "min_survivors", 1u << 24, &c.min_survivors));
  POCKETLLM_RETURN_IF_ERROR(read_uint<uint32_t>(j, "degree", 254, &c.degree));
  POCKETLLM_RETURN_IF_ERROR(read_uint<uint32_t>(j, "share_threshold", 254, &c.share_threshold));
  POCKETLLM_RETURN_IF_ERROR(read_uint<uint32_t>(j, "tau", 4096, &c.input.tau));
  uint32_t bits = 0;
  POCKETLLM_RETURN_IF_ERROR(read_uint<uint32_t>(j, "scale_bits", 52, &bits));
  c.input.scale_bits = static_cast<int>(bits);
  POCKETLLM_RETURN_IF_ERROR(read_uint<uint64_t>(j, "max_weight", uint64_t{1} << 40, &c.input.max_weight));
  if (!j.contains("bound") || !j["bound"].is_number() || !(j["bound"].get<double>() > 0) || !std::isfinite(j["bound"].get<double>()))
    return bad("bound", "must be a positive number");
  c.input.bound = j["bound"].get<double>();
  if (!j.contains("uniform_weights") || !j["uniform_weights"].is_boolean()) return bad("uniform_weights", "must be true or false");
  c.input.uniform_weights = j["uniform_weights"].get<bool>();
  if (!j.contains("noise_variance") || !j["noise_variance"].is_number() || !(j["noise_variance"].get<double>() >= 0) ||
      !std::isfinite(j["noise_variance"].get<double>()))
    return bad("noise_variance", "must be a number >= 0");
  c.input.noise_variance = j["noise_variance"].get<double>();
  return c;
}

json to_json(const AdvertiseKeys& m) {
  return {{"enc_public", bytes_to_hex(m.enc_public.data(), 32)}, {"mask_public", bytes_to_hex(m.mask_public.data(), 32)}};
}

Result<AdvertiseKeys> parse_advertise_keys(const json& j) {
  POCKETLLM_RETURN_IF_ERROR(only_fields(j, {"enc_public", "mask_public"}, "keys"));
  AdvertiseKeys m;
  POCKETLLM_RETURN_IF_ERROR(read_key(j, "enc_public", &m.enc_public));
  POCKETLLM_RETURN_IF_ERROR(read_key(j, "mask_public", &m.mask_public));
  return m;
}

json to_json(const Roster& m) {
  json nb = json::array();
  for (const auto& p : m.neighbours)
    nb.push_back({{"index", p.index}, {"enc_public", bytes_to_hex(p.enc_public.data(), 32)}, {"mask_public", bytes_to_hex(p.mask_public.data(), 32)}});
  return {{"n", m.n}, {"degree", m.degree}, {"share_threshold", m.share_threshold}, {"index", m.index}, {"neighbours", nb}};
}

Result<Roster> parse_roster(const json& j) {
  POCKETLLM_RETURN_IF_ERROR(only_fields(j, {"n", "degree", "share_threshold", "index", "neighbours"}, "roster"));
  Roster m;
  POCKETLLM_RETURN_IF_ERROR(read_uint<uint32_t>(j, "n", 1u << 24, &m.n));
  POCKETLLM_RETURN_IF_ERROR(read_uint<uint32_t>(j, "degree", 254, &m.degree));
  POCKETLLM_RETURN_IF_ERROR(read_uint<uint32_t>(j, "share_threshold", 254, &m.share_threshold));
  POCKETLLM_RETURN_IF_ERROR(read_uint<uint32_t>(j, "index", 1u << 24, &m.index));
  const json* list = nullptr;
  POCKETLLM_RETURN_IF_ERROR(read_list(j, "neighbours", kMaxListed, &list));
  for (const json& p : *list) {
    POCKETLLM_RETURN_IF_ERROR(only_fields(p, {"index", "enc_public", "mask_public"}, "neighbours[]"));
    Roster::Peer peer;
    POCKETLLM_RETURN_IF_ERROR(read_uint<uint32_t>(p, "index", 1u << 24, &peer.index));
    POCKETLLM_RETURN_IF_ERROR(read_key(p, "enc_public", &peer.enc_public));
    POCKETLLM_RETURN_IF_ERROR(read_key(p, "mask_public", &peer.mask_public));
    m.neighbours.push_back(peer);
  }
  return m;
}

namespace {

json shares_to_json(const std::vector<EncryptedShare>& v, bool with_from) {
  json a = json::array();
  for (const auto& e : v) {
    json s = {{with_from ? "from" : "to", with_from ? e.from : e.to}, {"sealed", bytes_to_hex(e.sealed.data(), e.sealed.size())}};
    a.push_back(s);
  }
  return a;
}

Result<std::vector<EncryptedShare>> parse_shares(const json& j, bool with_from) {
  const json* list = nullptr;
  POCKETLLM_RETURN_IF_ERROR(read_list(j, "shares", kMaxListed, &list));
  std::vector<EncryptedShare> out;
  const char* who = with_from ? "from" : "to";
  for (const json& s : *list) {
    POCKETLLM_RETURN_IF_ERROR(only_fields(s, {who, "sealed"}, "shares[]"));
    EncryptedShare e;
    POCKETLLM_RETURN_IF_ERROR(read_uint<uint32_t>(s, who, 1u << 24, with_from ? &e.from : &e.to));
    POCKETLLM_RETURN_IF_ERROR(read_bytes(s, "sealed", kSealedShareSize, &e.sealed));
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace

json to_json(const ShareKeys& m) { return {{"shares", shares_to_json(m.shares, false)}}; }

Result<ShareKeys> parse_share_keys(const json& j) {
  POCKETLLM_RETURN_IF_ERROR(only_fields(j, {"shares"}, "share_keys"));
  auto s = parse_shares(j, false);
  if (!s) return s.status();
  return ShareKeys{std::move(*s)};
}

json inbox_to_json(const std::vector<EncryptedShare>& inbox) { return {{"shares", shares_to_json(inbox, true)}}; }

Result<std::vector<EncryptedShare>> parse_inbox(const json& j) {
  POCKETLLM_RETURN_IF_ERROR(only_fields(j, {"shares"}, "inbox"));
  return parse_shares(j, true);
}

json to_json(const MaskedInput& m) {
  json y = json::array();
  for (uint64_t w : m.y) y.push_back(word_hex(w));
  return {{"y", y}};
}

Result<MaskedInput> parse_masked_input(const json& j) {
  POCKETLLM_RETURN_IF_ERROR(only_fields(j, {"y"}, "masked_input"));
  const json* list = nullptr;
  POCKETLLM_RETURN_IF_ERROR(read_list(j, "y", kMaxWords, &list));
  MaskedInput m;
  for (const json& w : *list) {
    uint64_t v = 0;
    POCKETLLM_RETURN_IF_ERROR(read_word(w, "y[]", &v));
    m.y.push_back(v);
  }
  return m;
}

json to_json(const SurvivorList& m) { return {{"survivors", m.survivors}, {"count", m.count}}; }

Result<SurvivorList> parse_survivors(const json& j) {
  POCKETLLM_RETURN_IF_ERROR(only_fields(j, {"survivors", "count"}, "survivors"));
  SurvivorList out;
  POCKETLLM_RETURN_IF_ERROR(read_uint<uint32_t>(j, "count", 1u << 24, &out.count));
  const json* list = nullptr;
  POCKETLLM_RETURN_IF_ERROR(read_list(j, "survivors", kMaxListed + 1, &list));
  for (const json& v : *list) {
    if (!v.is_number_unsigned() || v.get<uint64_t>() >= (1u << 24)) return bad("survivors[]", "must be participant indices");
    out.survivors.push_back(v.get<uint32_t>());
  }
  return out;
}

json to_json(const Unmask& m) {
  json a = json::array();
  for (const auto& r : m.shares)
    a.push_back({{"owner", r.owner}, {"self_mask", r.self_mask}, {"share", bytes_to_hex(r.share.data(), r.share.size())}});
  return {{"shares", a}};
}

Result<Unmask> parse_unmask(const json& j) {
  POCKETLLM_RETURN_IF_ERROR(only_fields(j, {"shares"}, "unmask"));
  const json* list = nullptr;
  POCKETLLM_RETURN_IF_ERROR(read_list(j, "shares", kMaxListed, &list));
  Unmask m;
  for (const json& s : *list) {
    POCKETLLM_RETURN_IF_ERROR(only_fields(s, {"owner", "self_mask", "share"}, "shares[]"));
    RevealedShare r;
    POCKETLLM_RETURN_IF_ERROR(read_uint<uint32_t>(s, "owner", 1u << 24, &r.owner));
    if (!s.contains("self_mask") || !s["self_mask"].is_boolean()) return bad("self_mask", "must be true or false");
    r.self_mask = s["self_mask"].get<bool>();
    POCKETLLM_RETURN_IF_ERROR(read_bytes(s, "share", 32, &r.share));
    m.shares.push_back(std::move(r));
  }
  return m;
}

}  // namespace pocketllm::secagg
