// Base64 (RFC 4648 §4, the standard alphabet with '=' padding): what certificate key pins are written
// in ("sha256/…", as OkHttp and Android's network security configuration write them).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace pocketllm {

std::string base64_encode(std::string_view bytes);
// Strict: the standard alphabet only, the length a multiple of 4 with padding where it belongs and
// zero bits after the last byte (so every byte string has exactly one accepted text); nullopt otherwise.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace pocketllm
