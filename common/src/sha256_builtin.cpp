// Sha256 on the dependency-free implementation (sha256_portable.h): the mobile build, no OpenSSL.
#include "pocketllm/common/sha256.h"
#include "pocketllm/common/sha256_portable.h"

namespace pocketllm {

Sha256::Sha256() : ctx_(new PortableSha256()) {}

Sha256::~Sha256() { delete static_cast<PortableSha256*>(ctx_); }

void Sha256::update(const void* data, size_t size) { static_cast<PortableSha256*>(ctx_)->update(data, size); }

void Sha256::update_u64le(uint64_t v) {
  uint8_t b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(v >> (8 * i));
  update(b, 8);
}

Sha256Digest Sha256::finish() { return static_cast<PortableSha256*>(ctx_)->finish(); }

}  // namespace pocketllm
