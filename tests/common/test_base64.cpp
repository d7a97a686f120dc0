// Base64 as RFC 4648 writes it: its §10 test vectors, strict decoding, round trips.
#include <catch2/catch.hpp>

#include <random>

#include "pocketllm/common/base64.h"

using pocketllm::base64_decode;
using pocketllm::base64_encode;

TEST_CASE("base64: the RFC 4648 test vectors both ways", "[common]") {
  const std::pair<const char*, const char*> vectors[] = {{"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    CHECK(base64_encode(plain) == encoded);
    REQUIRE(base64_decode(encoded).has_value());
    CHECK(*base64_decode(encoded) == plain);
  }
  CHECK(base64_encode(std::string("\xfb\xff\xbf", 3)) == "+/+/");  // the two characters past the letters and digits
}

TEST_CASE("base64: decoding is strict", "[common]") {
  for (const char* bad : {"Zg=", "Zg", "Z===", "====", "Zh==", "Zm9=", "Zg==Zg==", "Zm 9v", "Zm9v\n", "Zm-_", "Zm9v!"}) {
    INFO(bad);
    CHECK_FALSE(base64_decode(bad).has_value());
  }
}

TEST_CASE("base64: any bytes round-trip, and decode(encode) is the only text accepted for them", "[common]") {
  std::mt19937 rng(7);
  for (int n = 0; n < 300; ++n) {
    std::string bytes(static_cast<size_t>(n % 70), '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    const std::string text = base64_encode(bytes);
    CHECK(text.size() == (bytes.size() + 2) / 3 * 4);
    const auto back = base64_decode(text);
    REQUIRE(back.has_value());
    CHECK(*back == bytes);
  }
}
