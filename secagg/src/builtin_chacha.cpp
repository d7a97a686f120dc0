// ChaCha20, Poly1305 and their AEAD written from RFC 8439; HMAC-SHA256 and HKDF from RFC 2104 / 5869 over
// the portable SHA-256; the OS CSPRNG.
#include <cstring>

#include "builtin_crypto.h"
#include "pocketllm/common/sha256_portable.h"

#if defined(__APPLE__)
#include <stdlib.h>  // arc4random_buf
#elif defined(__linux__)
#include <sys/random.h>
#include <cerrno>
#include <fstream>
#endif
#include <stdexcept>

namespace pocketllm::secagg::builtin {
namespace {

uint32_t rotl(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }
uint32_t le32(const uint8_t* p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24; }
void put_le32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void put_le64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

void quarter(uint32_t* s, int a, int b, int c, int d) {
  s[a] += s[b]; s[d] ^= s[a]; s[d] = rotl(s[d], 16);
  s[c] += s[d]; s[b] ^= s[c]; s[b] = rotl(s[b], 12);
  s[a] += s[b]; s[d] ^= s[a]; s[d] = rotl(s[d], 8);
  s[c] += s[d]; s[b] ^= s[c]; s[b] = rotl(s[b], 7);
}

void chacha_block(const Key32& key, const uint8_t nonce[12], uint32_t counter, uint8_t out[64]) {
  uint32_t in[16] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574};
  for (int i = 0; i < 8; ++i) in[4 + i] = le32(key.data() + 4 * i);
  in[12] = counter;
  for (int i = 0; i < 3; ++i) in[13 + i] = le32(nonce + 4 * i);
  uint32_t s[16];
  std::memcpy(s, in, sizeof s);
  for (int r = 0; r < 10; ++r) {
    quarter(s, 0, 4, 8, 12);
    quarter(s, 1, 5, 9, 13);
    quarter(s, 2, 6, 10, 14);
    quarter(s, 3, 7, 11, 15);
    quarter(s, 0, 5, 10, 15);
    quarter(s, 1, 6, 11, 12);
    quarter(s, 2, 7, 8, 13);
    quarter(s, 3, 4, 9, 14);
  }
  for (int i = 0; i < 16; ++i) put_le32(out + 4 * i, s[i] + in[i]);
}

// Poly1305 in 26-bit limbs (products in 64 bits), after the reference "donna-32" layout.
struct Poly {
  uint32_t r[5], h[5] = {0, 0, 0, 0, 0}, pad[4];
  explicit Poly(const uint8_t key[32]) {
    r[0] = le32(key + 0) & 0x3ffffff;
    r[1] = (le32(key + 3) >> 2) & 0x3ffff03;
    r[2] = (le32(key + 6) >> 4) & 0x3ffc0ff;
    r[3] = (le32(key + 9) >> 6) & 0x3f03fff;
    r[4] = (le32(key + 12) >> 8) & 0x00fffff;
    for (int i = 0; i < 4; ++i) pad[i] = le32(key + 16 + 4 * i);
  }
  // One 16-byte block (or a final shorter one, already padded with its 0x01 byte: hibit 0).
  void block(const uint8_t* m, uint32_t hibit) {
    const uint32_t s1 = r[1] * 5, s2 = r[2] * 5, s3 = r[3] * 5, s4 = r[4] * 5;
    h[0] += le32(m + 0) & 0x3ffffff;
    h[1] += (le32(m + 3) >> 2) & 0x3ffffff;
    h[2] += (le32(m + 6) >> 4) & 0x3ffffff;
    h[3] += (le32(m + 9) >> 6) & 0x3ffffff;
    h[4] += (le32(m + 12) >> 8) | hibit;
    uint64_t d0 = (uint64_t)h[0] * r[0] + (uint64_t)h[1] * s4 + (uint64_t)h[2] * s3 + (uint64_t)h[3] * s2 + (uint64_t)h[4] * s1;
    uint64_t d1 = (uint64_t)h[0] * r[1] + (uint64_t)h[1] * r[0] + (uint64_t)h[2] * s4 + (uint64_t)h[3] * s3 + (uint64_t)h[4] * s2;
    uint64_t d2 = (uint64_t)h[0] * r[2] + (uint64_t)h[1] * r[1] + (uint64_t)h[2] * r[0] + (uint64_t)h[3] * s4 + (uint64_t)h[4] * s3;
    uint64_t d3 = (uint64_t)h[0] * r[3] + (uint64_t)h[1] * r[2] + (uint64_t)h[2] * r[1] + (uint64_t)h[3] * r[0] + (uint64_t)h[4] * s4;
    uint64_t d4 = (uint64_t)h[0] * r[4] + (uint64_t)h[1] * r[3] + (uint64_t)h[2] * r[2] + (uint64_t)h[3] * r[1] + (uint64_t)h[4] * r[0];
    uint32_t c = static_cast<uint32_t>(d0 >> 26);
    h[0] = static_cast<uint32_t>(d0) & 0x3ffffff;
    d1 += c; c = static_cast<uint32_t>(d1 >> 26); h[1] = static_cast<uint32_t>(d1) & 0x3ffffff;
    d2 += c; c = static_cast<uint32_t>(d2 >> 26); h[2] = static_cast<uint32_t>(d2) & 0x3ffffff;
    d3 += c; c = static_cast<uint32_t>(d3 >> 26); h[3] = static_cast<uint32_t>(d3) & 0x3ffffff;
    d4 += c; c = static_cast<uint32_t>(d4 >> 26); h[4] = static_cast<uint32_t>(d4) & 0x3ffffff;
    h[0] += c * 5; c = h[0] >> 26; h[0] &= 0x3ffffff;
    h[1] += c;
  }
  std::array<uint8_t, 16> finish() {
    uint32_t c = h[1] >> 26; h[1] &= 0x3ffffff;
    h[2] += c; c = h[2] >> 26; h[2] &= 0x3ffffff;
    h[3] += c; c = h[3] >> 26; h[3] &= 0x3ffffff;
    h[4] += c; c = h[4] >> 26; h[4] &= 0x3ffffff;
    h[0] += c * 5; c = h[0] >> 26; h[0] &= 0x3ffffff;
    h[1] += c;
    // g = h + 5 - 2^130; take g when it does not borrow (h >= p), without branching.
    uint32_t g[5];
    g[0] = h[0] + 5; c = g[0] >> 26; g[0] &= 0x3ffffff;
    g[1] = h[1] + c; c = g[1] >> 26; g[1] &= 0x3ffffff;
    g[2] = h[2] + c; c = g[2] >> 26; g[2] &= 0x3ffffff;
    g[3] = h[3] + c; c = g[3] >> 26; g[3] &= 0x3ffffff;
    g[4] = h[4] + c - (1u << 26);
    const uint32_t mask = (g[4] >> 31) - 1;  // all ones when g >= 0
    for (int i = 0; i < 5; ++i) h[i] = (h[i] & ~mask) | (g[i] & mask);
    const uint32_t w0 = h[0] | (h[1] << 26), w1 = (h[1] >> 6) | (h[2] << 20), w2 = (h[2] >> 12) | (h[3] << 14), w3 = (h[3] >> 18) | (h[4] << 8);
    uint64_t f = (uint64_t)w0 + pad[0];
    std::array<uint8_t, 16> tag;
    put_le32(tag.data() + 0, static_cast<uint32_t>(f));
    f = (uint64_t)w1 + pad[1] + (f >> 32);
    put_le32(tag.data() + 4, static_cast<uint32_t>(f));
    f = (uint64_t)w2 + pad[2] + (f >> 32);
    put_le32(tag.data() + 8, static_cast<uint32_t>(f));
    f = (uint64_t)w3 + pad[3] + (f >> 32);
    put_le32(tag.data() + 12, static_cast<uint32_t>(f));
    return tag;
  }
  void update(const uint8_t* m, size_t n) {
    for (; n >= 16; n -= 16, m += 16) block(m, 1u << 24);
    if (n > 0) {
      uint8_t last[16] = {0};
      std::memcpy(last, m, n);
      last[n] = 1;
      block(last, 0);
    }
  }
};

std::array<uint8_t, 16> aead_tag(const Key32& key, const uint8_t nonce[12], const Bytes& aad, const uint8_t* ct, size_t n) {
  uint8_t block0[64];
  chacha_block(key, nonce, 0, block0);
  // aad ‖ zeros to 16 ‖ ciphertext ‖ zeros to 16 ‖ LE64(|aad|) ‖ LE64(|ciphertext|): whole blocks only.
  Bytes mac(aad);
  mac.resize((mac.size() + 15) / 16 * 16, 0);
  mac.insert(mac.end(), ct, ct + n);
  mac.resize((mac.size() + 15) / 16 * 16, 0);
  uint8_t lens[16];
  put_le64(lens, aad.size());
  put_le64(lens + 8, n);
  mac.insert(mac.end(), lens, lens + 16);
  const auto tag = poly1305(block0, mac.data(), mac.size());
  std::memset(block0, 0, sizeof block0);
  return tag;
}

}  // namespace

void chacha20_xor(const Key32& key, const uint8_t nonce[12], uint32_t counter, uint8_t* data, size_t n) {
  uint8_t ks[64];
  for (size_t off = 0; off < n; off += 64, ++counter) {
    chacha_block(key, nonce, counter, ks);
    const size_t m = n - off < 64 ? n - off : 64;
    for (size_t i = 0; i < m; ++i) data[off + i] ^= ks[i];
  }
  std::memset(ks, 0, sizeof ks);
}

std::array<uint8_t, 16> poly1305(const uint8_t key[32], const uint8_t* msg, size_t n) {
  Poly p(key);
  p.update(msg, n);
  return p.finish();
}

Bytes aead_seal(const Key32& key, const uint8_t nonce[12], const Bytes& aad, const Bytes& plaintext) {
  Bytes out(plaintext);
  chacha20_xor(key, nonce, 1, out.data(), out.size());
  const auto tag = aead_tag(key, nonce, aad, out.data(), out.size());
  out.insert(out.end(), tag.begin(), tag.end());
  return out;
}

bool aead_open(const Key32& key, const uint8_t nonce[12], const Bytes& aad, const uint8_t* sealed, size_t n, Bytes* out) {
  out->clear();
  if (n < 16) return false;
  const auto tag = aead_tag(key, nonce, aad, sealed, n - 16);
  uint8_t diff = 0;
  for (int i = 0; i < 16; ++i) diff |= tag[i] ^ sealed[n - 16 + i];
  if (diff != 0) return false;
  out->assign(sealed, sealed + n - 16);
  chacha20_xor(key, nonce, 1, out->data(), out->size());
  return true;
}

Key32 hmac_sha256(const uint8_t* key, size_t key_len, const uint8_t* msg, size_t n) {
  uint8_t k[64] = {0};
  if (key_len > 64) {
    PortableSha256 h;
    h.update(key, key_len);
    const auto d = h.finish();
    std::memcpy(k, d.data(), 32);
  } else {
    std::memcpy(k, key, key_len);
  }
  uint8_t ipad[64], opad[64];
  for (int i = 0; i < 64; ++i) {
    ipad[i] = k[i] ^ 0x36;
    opad[i] = k[i] ^ 0x5c;
  }
  PortableSha256 inner;
  inner.update(ipad, 64);
  inner.update(msg, n);
  const auto ih = inner.finish();
  PortableSha256 outer;
  outer.update(opad, 64);
  outer.update(ih.data(), ih.size());
  const auto d = outer.finish();
  Key32 out;
  std::memcpy(out.data(), d.data(), 32);
  std::memset(k, 0, sizeof k);
  return out;
}

Key32 hkdf_sha256(const Key32& ikm, const std::string& info) {
  const uint8_t salt[32] = {0};  // an empty salt is HashLen zeros (RFC 5869 §2.2)
  const Key32 prk = hmac_sha256(salt, sizeof salt, ikm.data(), ikm.size());
  std::string t = info;
  t.push_back('\x01');
  return hmac_sha256(prk.data(), prk.size(), reinterpret_cast<const uint8_t*>(t.data()), t.size());
}

void os_random(uint8_t* out, size_t n) {
#if defined(__APPLE__)
  arc4random_buf(out, n);
#elif defined(__linux__)
  size_t got = 0;
  while (got < n) {
    const ssize_t r = getrandom(out + got, n - got, 0);
    if (r > 0) {
      got += static_cast<size_t>(r);
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    std::ifstream urandom("/dev/urandom", std::ios::binary);  // kernels before getrandom(2)
    if (!urandom.read(reinterpret_cast<char*>(out + got), static_cast<std::streamsize>(n - got)))
      throw std::runtime_error("no operating-system randomness");
    return;
  }
#else
#error "os_random: no CSPRNG for this platform"
#endif
}

}  // namespace pocketllm::secagg::builtin
