// SHA-256 written from FIPS 180-4 with no dependency: the hash of the mobile build (no OpenSSL), and
// the reference the OpenSSL-backed Sha256 is checked against in the tests.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace pocketllm {

class PortableSha256 {
 public:
  PortableSha256();
  void update(const void* data, size_t size);
  std::array<uint8_t, 32> finish();

 private:
  void compress(const uint8_t* block);
  uint32_t h_[8];
  uint8_t buffer_[64];
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

}  // namespace pocketllm
