// Derivations both sides of a round compute the same way (docs/secagg.md §3): the pairwise keys and the
// associated data of a sealed share. Internal to the secagg library.
#pragma once

#include <algorithm>
#include <string>

#include "pocketllm/secagg/crypto.h"

namespace pocketllm::secagg::detail {

inline void put_u64(std::string* s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
inline void put_u32(std::string* s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// HKDF info: label ‖ round_id (LE 8) ‖ min(a, b) (LE 4) ‖ max(a, b) (LE 4).
inline std::string pair_info(const char* label, uint64_t round_id, uint32_t a, uint32_t b) {
  std::string s = label;
  put_u64(&s, round_id);
  put_u32(&s, std::min(a, b));
  put_u32(&s, std::max(a, b));
  return s;
}
constexpr const char* kEncLabel = "pocketllm-secagg-v1 share key";
constexpr const char* kMaskLabel = "pocketllm-secagg-v1 pairwise mask";
constexpr const char* kAadLabel = "pocketllm-secagg-v1 share";

// Associated data of a sealed share: label ‖ round_id ‖ from ‖ to (the direction matters here).
inline Bytes share_aad(uint64_t round_id, uint32_t from, uint32_t to) {
  std::string s = kAadLabel;
  put_u64(&s, round_id);
  put_u32(&s, from);
  put_u32(&s, to);
  return Bytes(s.begin(), s.end());
}

// The sign with which participant a adds the pairwise mask it shares with b.
inline int pair_sign(uint32_t a, uint32_t b) { return a < b ? 1 : -1; }

}  // namespace pocketllm::secagg::detail
