// UTF-8 validation and the stream of generated text: whole characters only, ill-formed bytes as U+FFFD.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "pocketllm/common/utf8.h"

using pocketllm::is_valid_utf8;
using pocketllm::to_valid_utf8;
using pocketllm::Utf8Stream;

namespace {
const std::string kFffd = "\xEF\xBF\xBD";
}

TEST_CASE("utf8: well-formed text is valid, and overlongs, surrogates and bytes past U+10FFFF are not", "[utf8]") {
  CHECK(is_valid_utf8(""));
  CHECK(is_valid_utf8("plain ascii"));
  CHECK(is_valid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));  // é € 😀
  CHECK(is_valid_utf8("\xF4\x8F\xBF\xBF"));                           // U+10FFFF
  CHECK_FALSE(is_valid_utf8("\xC0\xAF"));                             // overlong '/'
  CHECK_FALSE(is_valid_utf8("\xE0\x80\xAF"));                         // overlong
  CHECK_FALSE(is_valid_utf8("\xED\xA0\x80"));                         // surrogate U+D800
  CHECK_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));                     // U+110000
  CHECK_FALSE(is_valid_utf8("\xF5\x80\x80\x80"));
  CHECK_FALSE(is_valid_utf8("\x80"));
  CHECK_FALSE(is_valid_utf8("caf\xC3"));  // cut short
}

TEST_CASE("utf8: each maximal ill-formed subpart becomes one U+FFFD", "[utf8]") {
  // The examples of Unicode 15 §3.9 (Table 3-8): 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64
  CHECK(to_valid_utf8("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64") ==
        "a" + kFffd + kFffd + kFffd + "b" + kFffd + "c" + kFffd + kFffd + "d");
  CHECK(to_valid_utf8("\xED\xA0\x80") == kFffd + kFffd + kFffd);  // a surrogate: three subparts of one byte
  CHECK(to_valid_utf8("\xC0\xAF") == kFffd + kFffd);
  CHECK(to_valid_utf8("ok\xE2\x82") == "ok" + kFffd);  // unfinished at the end: one
  CHECK(to_valid_utf8("caf\xC3\xA9") == "caf\xC3\xA9");
}

TEST_CASE("utf8: a stream holds a character back until its last byte and hands out only valid text", "[utf8]") {
  Utf8Stream s;
  CHECK(s.push("a\xF0\x9F") == "a");  // 😀 = F0 9F 98 80, split over three pushes
  CHECK(s.pending() == 2);
  CHECK(s.push("\x98") == "");
  CHECK(s.push("\x80" "b") == "\xF0\x9F\x98\x80" "b");
  CHECK(s.pending() == 0);
  CHECK(s.push("\xE2\x82") == "");
  CHECK(s.push("x") == kFffd + "x");  // the character never finished: replaced, and x follows
  CHECK(s.push("\xC3") == "");
  CHECK(s.finish() == kFffd);  // unfinished at the end
  CHECK(s.pending() == 0);
  CHECK(s.finish() == "");
}

TEST_CASE("utf8: a stream fed byte by byte gives what decoding the whole text gives", "[utf8]") {
  // Every pair of bytes from a set that covers leads, continuations and invalid bytes, then every split
  // of a longer mixed text into single bytes.
  const std::vector<unsigned char> bytes = {0x41, 0x7F, 0x80, 0xBF, 0xC2, 0xC3, 0xDF, 0xE0, 0xE1, 0xED,
                                            0xEF, 0xF0, 0xF1, 0xF4, 0xF5, 0xFF, 0xA0, 0x90, 0x8F, 0x9F};
  int checked = 0;
  for (unsigned char a : bytes)
    for (unsigned char b : bytes)
      for (unsigned char c : bytes) {
        const std::string text{static_cast<char>(a), static_cast<char>(b), static_cast<char>(c)};
        Utf8Stream s;
        std::string streamed;
        for (char ch : text) {
          const std::string piece = s.push(std::string(1, ch));
          REQUIRE(is_valid_utf8(piece));
          streamed += piece;
        }
        streamed += s.finish();
        REQUIRE(streamed == to_valid_utf8(text));
        REQUIRE(is_valid_utf8(streamed));
        ++checked;
      }
  CHECK(checked == 8000);
}
