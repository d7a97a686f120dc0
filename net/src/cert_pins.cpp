#include "pocketllm/net/cert_pins.h"

#include <algorithm>
#include <cctype>

#include "pocketllm/common/base64.h"

namespace pocketllm::net {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool from_hex64(std::string_view s, Sha256Digest* out) {
  if (s.size() != 64) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
  };
  for (size_t i = 0; i < 32; ++i) {
    const int hi = nibble(s[2 * i]), lo = nibble(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return true;
}

bool contains(const std::vector<Sha256Digest>& v, const Sha256Digest& d) { return std::find(v.begin(), v.end(), d) != v.end(); }

}  // namespace

bool CertPins::accepts(std::string_view cert_der, std::string_view spki_der) const {
  return (!key.empty() && contains(key, sha256(spki_der))) || (!cert.empty() && contains(cert, sha256(cert_der)));
}

Result<CertPins> parse_pins(std::string_view text) {
  CertPins pins;
  const std::string_view all = trim(text);
  if (all.empty()) return pins;
  size_t start = 0;
  while (start <= all.size()) {
    const size_t comma = std::min(all.find(',', start), all.size());
    const std::string_view pin = trim(all.substr(start, comma - start));
    start = comma + 1;
    const std::string shown = pin.size() > 80 ? std::string(pin.substr(0, 80)) + "…" : std::string(pin);
    if (pin.empty()) return invalid_argument("empty pin in the pin list (pins are separated by single commas)");
    Sha256Digest d{};
    if (pin.rfind("sha256/", 0) == 0) {
      const auto raw = base64_decode(pin.substr(7));
      if (!raw || raw->size() != d.size())
        return invalid_argument("key pin '" + shown + "' is not sha256/ followed by the base64 of 32 bytes (44 characters ending in '=')");
      std::copy(raw->begin(), raw->end(), reinterpret_cast<char*>(d.data()));
      pins.key.push_back(d);
    } else if (from_hex64(pin, &d)) {
      pins.cert.push_back(d);
    } else {
      return invalid_argument("pin '" + shown +
                              "' is neither a key pin (sha256/BASE64 of the public key) nor a certificate's SHA-256 (64 hex digits)");
    }
  }
  return pins;
}

std::string key_pin(std::string_view spki_der) {
  const Sha256Digest d = sha256(spki_der);
  return "sha256/" + base64_encode(std::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
}

std::string cert_pin(std::string_view cert_der) { return to_hex(sha256(cert_der)); }

}  // namespace pocketllm::net
