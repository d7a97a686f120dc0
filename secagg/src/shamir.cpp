#include "pocketllm/secagg/shamir.h"

#include <array>
#include <set>
#include <string>

namespace pocketllm::secagg {
namespace {

// log/exp tables over the generator 3.
struct Tables {
  std::array<uint8_t, 512> exp{};
  std::array<uint8_t, 256> log{};
  Tables() {
    uint8_t x = 1;
    for (int i = 0; i < 255; ++i) {
      exp[i] = x;
      log[x] = static_cast<uint8_t>(i);
      // x *= 3: x ^ (x * 2), with the reduction by 0x11b
      const uint8_t x2 = static_cast<uint8_t>((x << 1) ^ ((x & 0x80) ? 0x1b : 0));
      x = static_cast<uint8_t>(x2 ^ x);
    }
    for (int i = 255; i < 512; ++i) exp[i] = exp[i - 255];
  }
};
const Tables& tables() {
  static const Tables t;
  return t;
}

// The Lagrange coefficients l_i(x) of the first `t` shares: the polynomial through them, at x, is
// sum_i l_i(x) * y_i. They depend on the points only, so one set serves every byte of the secret.
std::vector<uint8_t> lagrange_at(const std::vector<Share>& s, uint32_t t, uint8_t x) {
  std::vector<uint8_t> l(t);
  for (uint32_t i = 0; i < t; ++i) {
    uint8_t num = 1, den = 1;
    for (uint32_t j = 0; j < t; ++j) {
      if (j == i) continue;
      num = gf256_mul(num, static_cast<uint8_t>(x ^ s[j].x));  // (x - x_j); subtraction is xor
      den = gf256_mul(den, static_cast<uint8_t>(s[i].x ^ s[j].x));
    }
    l[i] = gf256_mul(num, gf256_inv(den));
  }
  return l;
}

uint8_t evaluate(const std::vector<Share>& s, const std::vector<uint8_t>& l, size_t b) {
  uint8_t acc = 0;
  for (size_t i = 0; i < l.size(); ++i) acc ^= gf256_mul(l[i], s[i].y[b]);
  return acc;
}

}  // namespace

uint8_t gf256_mul(uint8_t a, uint8_t b) {
  if (a == 0 || b == 0) return 0;
  const Tables& t = tables();
  return t.exp[t.log[a] + t.log[b]];
}

uint8_t gf256_inv(uint8_t a) {
  const Tables& t = tables();
  return t.exp[255 - t.log[a]];
}

Result<std::vector<Share>> shamir_split(const Bytes& secret, uint32_t threshold, uint32_t holders) {
  if (threshold < 1 || threshold > holders || holders > 255)
    return invalid_argument("shamir: need 1 <= threshold <= holders <= 255, got threshold " + std::to_string(threshold) +
                            " of " + std::to_string(holders));
  std::vector<Share> shares(holders);
  for (uint32_t i = 0; i < holders; ++i) {
    shares[i].x = static_cast<uint8_t>(i + 1);
    shares[i].y.resize(secret.size());
  }
  std::vector<uint8_t> coeff(threshold);
  for (size_t b = 0; b < secret.size(); ++b) {
    coeff[0] = secret[b];
    if (threshold > 1) random_bytes(coeff.data() + 1, threshold - 1);
    for (uint32_t i = 0; i < holders; ++i) {
      uint8_t y = 0;  // Horner
      for (uint32_t c = threshold; c-- > 0;) y = static_cast<uint8_t>(gf256_mul(y, shares[i].x) ^ coeff[c]);
      shares[i].y[b] = y;
    }
  }
  return shares;
}

Result<Bytes> shamir_combine(const std::vector<Share>& shares, uint32_t threshold) {
  if (threshold < 1) return invalid_argument("shamir: threshold must be at least 1");
  if (shares.size() < threshold)
    return invalid_argument("shamir: " + std::to_string(shares.size()) + " shares, " + std::to_string(threshold) + " needed");
  std::set<uint8_t> xs;
  for (const Share& s : shares) {
    if (s.x == 0 || !xs.insert(s.x).second) return corrupt("shamir: share points must be distinct and non-zero");
    if (s.y.size() != shares[0].y.size()) return corrupt("shamir: shares of different lengths");
  }
  Bytes secret(shares[0].y.size());
  const std::vector<uint8_t> at_zero = lagrange_at(shares, threshold, 0);
  for (size_t b = 0; b < secret.size(); ++b) secret[b] = evaluate(shares, at_zero, b);
  for (size_t extra = threshold; extra < shares.size(); ++extra) {
    const std::vector<uint8_t> l = lagrange_at(shares, threshold, shares[extra].x);
    for (size_t b = 0; b < secret.size(); ++b)
      if (evaluate(shares, l, b) != shares[extra].y[b])
        return corrupt("shamir: the shares do not lie on one polynomial (one was altered or belongs to another secret)");
  }
  return secret;
}

}  // namespace pocketllm::secagg
