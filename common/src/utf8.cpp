#include "pocketllm/common/utf8.h"

#include <cstdint>

namespace pocketllm {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Bytes of the sequence a lead byte starts (0: it starts none) and the range its second byte must fall
// in (Unicode Table 3-7: the ranges that exclude overlongs, surrogates and code points past U+10FFFF).
struct Lead {
  int length;
  uint8_t lo, hi;
};

Lead lead_of(uint8_t c) {
  if (c < 0x80) return {1, 0, 0};
  if (c < 0xC2) return {0, 0, 0};
  if (c < 0xE0) return {2, 0x80, 0xBF};
  if (c == 0xE0) return {3, 0xA0, 0xBF};
  if (c == 0xED) return {3, 0x80, 0x9F};
  if (c < 0xF0) return {3, 0x80, 0xBF};
  if (c == 0xF0) return {4, 0x90, 0xBF};
  if (c < 0xF4) return {4, 0x80, 0xBF};
  if (c == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// How a sequence at s[i] reads: complete (n bytes), truncated by the end of s (all bytes so far fit), or
// ill-formed after n bytes (n >= 1: the maximal subpart to replace).
enum class Read { kComplete, kTruncated, kIllFormed };

Read read_at(std::string_view s, size_t i, size_t* n) {
  const Lead lead = lead_of(static_cast<uint8_t>(s[i]));
  if (lead.length == 0) {
    *n = 1;
    return Read::kIllFormed;
  }
  for (int k = 1; k < lead.length; ++k) {
    if (i + k >= s.size()) {
      *n = static_cast<size_t>(k);
      return Read::kTruncated;
    }
    const uint8_t b = static_cast<uint8_t>(s[i + k]);
    const uint8_t lo = k == 1 ? lead.lo : 0x80, hi = k == 1 ? lead.hi : 0xBF;
    if (b < lo || b > hi) {
      *n = static_cast<size_t>(k);
      return Read::kIllFormed;
    }
  }
  *n = static_cast<size_t>(lead.length);
  return Read::kComplete;
}

// Appends s's characters to out with ill-formed subparts replaced; returns where an unfinished character
// at the end starts (s.size() when there is none).
size_t decode_into(std::string_view s, std::string* out) {
  size_t i = 0;
  while (i < s.size()) {
    size_t n = 0;
    switch (read_at(s, i, &n)) {
      case Read::kComplete: out->append(s.substr(i, n)); break;
      case Read::kIllFormed: out->append(kReplacement); break;
      case Read::kTruncated: return i;
    }
    i += n;
  }
  return s.size();
}

}  // namespace

bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t n = 0;
    if (read_at(s, i, &n) != Read::kComplete) return false;
    i += n;
  }
  return true;
}

std::string to_valid_utf8(std::string_view bytes) {
  Utf8Stream stream;
  std::string out = stream.push(bytes);
  return out + stream.finish();
}

std::string Utf8Stream::push(std::string_view bytes) {
  pending_.append(bytes);
  std::string out;
  const size_t tail = decode_into(pending_, &out);
  pending_.erase(0, tail);
  return out;
}

std::string Utf8Stream::finish() {
  std::string out = pending_.empty() ? std::string() : std::string(kReplacement);
  pending_.clear();
  return out;
}

}  // namespace pocketllm
