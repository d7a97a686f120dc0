// Sha256 through OpenSSL's EVP interface (SHA extensions where the CPU has them): the desktop and
// server build. The mobile build uses sha256_builtin.cpp instead.
#include "pocketllm/common/sha256.h"

#include <openssl/evp.h>

#include <stdexcept>

namespace pocketllm {

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr || EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("OpenSSL: SHA-256 initialisation failed");
}

Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

void Sha256::update(const void* data, size_t size) {
  // Chunked: EVP_DigestUpdate takes size_t, but keep calls bounded for very large tensors.
  const auto* p = static_cast<const uint8_t*>(data);
  while (size > 0) {
    const size_t n = size < (size_t{1} << 30) ? size : (size_t{1} << 30);
    EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), p, n);
    p += n;
    size -= n;
  }
}

void Sha256::update_u64le(uint64_t v) {
  uint8_t b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(v >> (8 * i));
  update(b, 8);
}

Sha256Digest Sha256::finish() {
  Sha256Digest d{};
  unsigned int len = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), d.data(), &len);
  return d;
}

}  // namespace pocketllm
