// A device's pin list comes from an app's configuration (net/cert_pins.h); the base64 inside it is read
// strictly. Any text: parse_pins answers (pins or an error, no crash). Byte 0 picks what the rest is
// fed to: base64_decode must accept exactly the canonical encodings (decode then encode gives the text
// back), and any bytes must encode to a text that decodes to them.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "pocketllm/common/base64.h"
#include "pocketllm/net/cert_pins.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 3) {
    case 0: {
      // Parsed: one pin per comma-separated part, each key pin's base64 found in the text as written.
      auto pins = pocketllm::net::parse_pins(rest);
      if (!pins.is_ok() || pins->empty()) break;
      size_t parts = 1;
      for (char c : rest) parts += c == ',';
      if (pins->key.size() + pins->cert.size() != parts) std::abort();
      for (const auto& d : pins->key) {
        const std::string b64 = pocketllm::base64_encode(std::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
        if (rest.find("sha256/" + b64) == std::string_view::npos) std::abort();
      }
      break;
    }
    case 1: {
      const auto bytes = pocketllm::base64_decode(rest);
      if (bytes && pocketllm::base64_encode(*bytes) != rest) std::abort();
      break;
    }
    default: {
      const std::string text = pocketllm::base64_encode(rest);
      const auto back = pocketllm::base64_decode(text);
      if (!back || *back != rest || text.size() % 4 != 0) std::abort();
    }
  }
  return 0;
}
