// UTF-8 for text that leaves the library: validation, and the stream of generated text.
//
// A generated token is bytes, not characters: a byte-fallback vocabulary (llama2.c, SentencePiece's
// <0xE2>) or a byte-level BPE (GPT-2) spreads one character over several tokens, and a sampling model can
// emit bytes that form no character at all. Utf8Stream turns those bytes into whole, valid UTF-8: the
// start of a character is held back until its last byte arrives, and each maximal ill-formed subpart
// (Unicode §3.9, "U+FFFD substitution of maximal subparts", as the WHATWG decoder does) becomes one
// U+FFFD. Concatenating everything push() and finish() return is the same as decoding all the bytes at
// once.
#pragma once

#include <string>
#include <string_view>

namespace pocketllm {

// Well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
bool is_valid_utf8(std::string_view s);

// The bytes as valid UTF-8, each maximal ill-formed subpart replaced by U+FFFD.
std::string to_valid_utf8(std::string_view bytes);

class Utf8Stream {
 public:
  // The characters complete after these bytes (possibly empty: a character still unfinished).
  std::string push(std::string_view bytes);
  // The end of the text: an unfinished character left over becomes U+FFFD. The stream starts afresh.
  std::string finish();
  // Bytes held back: the start of a character whose remaining bytes have not arrived (at most 3).
  size_t pending() const { return pending_.size(); }

 private:
  std::string pending_;
};

}  // namespace pocketllm
