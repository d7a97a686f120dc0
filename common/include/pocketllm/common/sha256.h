// SHA-256: OpenSSL's EVP interface in the desktop/server build, the built-in implementation
// (sha256_portable.h) in the mobile build (POCKETLLM_MOBILE). Same digests, checked against each other.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pocketllm {

using Sha256Digest = std::array<uint8_t, 32>;

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, size_t size);
  void update(std::string_view s) { update(s.data(), s.size()); }
  void update_u64le(uint64_t v);
  Sha256Digest finish();

 private:
  void* ctx_;  // EVP_MD_CTX*, kept opaque so OpenSSL headers stay out of this header
};

Sha256Digest sha256(std::string_view bytes);
std::string to_hex(const uint8_t* data, size_t size);
inline std::string to_hex(const Sha256Digest& d) { return to_hex(d.data(), d.size()); }

}  // namespace pocketllm
