// The cryptographic primitives of secure aggregation (docs/secagg.md §3): X25519, HKDF-SHA256,
// ChaCha20-Poly1305, the ChaCha20 mask generator, the OS CSPRNG. Desktop builds wrap OpenSSL's libcrypto
// (crypto_openssl.cpp); the mobile profile, which has no libcrypto, carries the same suite written from
// the RFCs (crypto_builtin.cpp) — the same bytes, checked against each other in the tests. Keys and
// secrets are 32 bytes; nothing here keeps state.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "pocketllm/common/status.h"

namespace pocketllm::secagg {

using Bytes = std::vector<uint8_t>;
using Key32 = std::array<uint8_t, 32>;

struct KeyPair {
  Key32 secret{};
  Key32 public_key{};
};

// Bytes from a CSPRNG (libcrypto's RAND_bytes; built in: getrandom(2) / arc4random_buf).
Key32 random_key();
void random_bytes(uint8_t* out, size_t n);
// Overwrites memory with zeros in a way the compiler may not drop (secrets going out of scope).
void secure_wipe(void* p, size_t n);

// An X25519 key pair (RFC 7748) with a fresh secret, or the pair of a given secret (a reconstructed one).
Result<KeyPair> x25519_generate();
Result<KeyPair> x25519_from_secret(const Key32& secret);
// The shared secret X25519(secret, peer); refused when it is all zeros (a small-order peer key).
Result<Key32> x25519_agree(const Key32& secret, const Key32& peer_public);

// A secret held ready for many agreements (with libcrypto: the key object built once, half the cost of
// x25519_agree each).
class X25519Secret {
 public:
  explicit X25519Secret(const Key32& secret);
  ~X25519Secret();
  X25519Secret(const X25519Secret&) = delete;
  X25519Secret& operator=(const X25519Secret&) = delete;
  Result<Key32> agree(const Key32& peer_public) const;

 private:
  void* pkey_;  // libcrypto: the EVP_PKEY; built in: a copy of the secret
};

// HKDF-SHA256 (RFC 5869) with an empty salt: 32 bytes of output keying material for `info`.
Key32 hkdf_sha256(const Key32& ikm, const std::string& info);

// ChaCha20-Poly1305 (RFC 8439): sealed = nonce (12, random) ‖ ciphertext ‖ tag (16). open() fails on any
// change to the key, the associated data or the sealed bytes.
constexpr size_t kAeadOverhead = 12 + 16;
Bytes aead_seal(const Key32& key, const Bytes& aad, const Bytes& plaintext);
Result<Bytes> aead_open(const Key32& key, const Bytes& aad, const Bytes& sealed);

// The mask generator: v[i] += sign · PRG(seed)[i] in Z_{2^64}, where PRG(seed) is the ChaCha20 keystream
// (RFC 8439) of key `seed`, an all-zero 12-byte nonce and block counter 0 upwards, read as little-endian
// 64-bit words. sign is +1 or -1.
void prg_add(const Key32& seed, int sign, std::vector<uint64_t>* v);

}  // namespace pocketllm::secagg
