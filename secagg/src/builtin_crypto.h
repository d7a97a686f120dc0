// Dependency-free implementations of the secure-aggregation suite, written from the RFCs: X25519 (RFC
// 7748), ChaCha20 and Poly1305 and their AEAD (RFC 8439), HMAC-SHA256 / HKDF (RFC 2104 / 5869, over the
// portable SHA-256), and the operating system's CSPRNG. The mobile profile (no libcrypto) uses them for
// everything; desktop builds use libcrypto and check these against it in the tests. Constant-time in the
// secrets: no branch and no table index depends on a key (the ladder swaps with masks).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "pocketllm/secagg/crypto.h"

namespace pocketllm::secagg::builtin {

// X25519(scalar, u) (RFC 7748 §5): the scalar clamped, u's top bit ignored.
Key32 x25519(const Key32& scalar, const Key32& u);
Key32 x25519_base(const Key32& scalar);  // u = 9: the public key of a secret

// The ChaCha20 keystream (RFC 8439 §2.4) XORed into `data` in place, from block `counter`.
void chacha20_xor(const Key32& key, const uint8_t nonce[12], uint32_t counter, uint8_t* data, size_t n);
// Poly1305 (RFC 8439 §2.5) of `msg` under a one-time 32-byte key.
std::array<uint8_t, 16> poly1305(const uint8_t key[32], const uint8_t* msg, size_t n);
// ChaCha20-Poly1305 (RFC 8439 §2.8): ciphertext ‖ tag; open() returns false (and leaves `out` empty) when
// the tag does not verify.
Bytes aead_seal(const Key32& key, const uint8_t nonce[12], const Bytes& aad, const Bytes& plaintext);
bool aead_open(const Key32& key, const uint8_t nonce[12], const Bytes& aad, const uint8_t* sealed, size_t n, Bytes* out);

Key32 hmac_sha256(const uint8_t* key, size_t key_len, const uint8_t* msg, size_t n);
// HKDF-SHA256 with an empty salt, 32 bytes out.
Key32 hkdf_sha256(const Key32& ikm, const std::string& info);

// n bytes from the OS CSPRNG: getrandom(2) on Linux and Android, arc4random_buf on Apple platforms.
void os_random(uint8_t* out, size_t n);

}  // namespace pocketllm::secagg::builtin
