// Shamir t-of-n secret sharing over GF(2^8) (the AES field, x^8 + x^4 + x^3 + x + 1), byte by byte: a
// secret of L bytes becomes n shares of L bytes each, share i being the value at x = i (1 ≤ i ≤ 255) of
// L independent random polynomials of degree t − 1 whose constant terms are the secret's bytes. Any t
// shares give the secret back; t − 1 shares are independent of it (docs/secagg.md §3.2).
#pragma once

#include <cstdint>
#include <vector>

#include "pocketllm/common/status.h"
#include "pocketllm/secagg/crypto.h"

namespace pocketllm::secagg {

struct Share {
  uint8_t x = 0;  // the evaluation point, 1..255
  Bytes y;        // one byte per secret byte
};

// Shares at x = 1..holders; needs 1 ≤ threshold ≤ holders ≤ 255. The coefficients come from the OS CSPRNG.
Result<std::vector<Share>> shamir_split(const Bytes& secret, uint32_t threshold, uint32_t holders);
// The secret from at least `threshold` shares with distinct non-zero x and equal lengths; extra shares must
// lie on the same polynomials (a share altered or from another secret is detected when there are more
// than threshold).
Result<Bytes> shamir_combine(const std::vector<Share>& shares, uint32_t threshold);

// Field arithmetic, exposed for the tests.
uint8_t gf256_mul(uint8_t a, uint8_t b);
uint8_t gf256_inv(uint8_t a);  // a ≠ 0

}  // namespace pocketllm::secagg
