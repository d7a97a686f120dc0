// The built-in suite (the mobile profile's: no libcrypto) against RFC vectors and against libcrypto on
// random inputs: the same bytes for every primitive, so a phone and a desktop device take part in one
// round.
#include <catch2/catch.hpp>

#include <cstring>
#include <random>
#include <string>

#include "builtin_crypto.h"
#include "hex.h"
#include "pocketllm/secagg/crypto.h"

using namespace pocketllm::secagg;

namespace {

using test::hex32;

Key32 seeded_key(std::mt19937_64& rng) {
  Key32 k;
  for (auto& b : k) b = static_cast<uint8_t>(rng());
  return k;
}

}  // namespace

TEST_CASE("built-in X25519: RFC 7748 vectors, and libcrypto's results on random keys") {
  // RFC 7748 §5.2, the first single-step vector.
  CHECK(builtin::x25519(hex32("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"),
                        hex32("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")) ==
        hex32("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"));
  // §6.1: Alice and Bob.
  const Key32 alice = hex32("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  const Key32 bob = hex32("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
  CHECK(builtin::x25519_base(alice) == hex32("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"));
  CHECK(builtin::x25519(alice, builtin::x25519_base(bob)) == hex32("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"));
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200; ++i) {
    const Key32 a = seeded_key(rng), b = seeded_key(rng);
    const Key32 pub_b = x25519_from_secret(b).value().public_key;
    CHECK(builtin::x25519_base(a) == x25519_from_secret(a).value().public_key);
    CHECK(builtin::x25519(a, pub_b) == x25519_agree(a, pub_b).value());
    // Any 32 bytes as the peer's u (top bit ignored): the field arithmetic's edge cases.
    Key32 u = seeded_key(rng);
    if (i % 3 == 0) std::fill(u.begin() + 1, u.end(), 0xff);
    auto lib = x25519_agree(a, u);
    if (lib) CHECK(builtin::x25519(a, u) == *lib);
  }
}

TEST_CASE("built-in ChaCha20, Poly1305, the AEAD and HKDF: RFC vectors and libcrypto's bytes") {
  // RFC 8439 §2.5.2: Poly1305.
  const Key32 pk = hex32("85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b");
  const std::string msg = "Cryptographic Forum Research Group";
  const auto tag = builtin::poly1305(pk.data(), reinterpret_cast<const uint8_t*>(msg.data()), msg.size());
  const Key32 want = hex32("a8061dc1305136c6c22b8baf0c0127a9" + std::string(32, '0'));
  CHECK(std::equal(tag.begin(), tag.end(), want.begin()));
  // The mask generator and the AEAD against libcrypto, on lengths around the 16- and 64-byte boundaries.
  std::mt19937_64 rng(11);
  for (size_t n : {size_t{0}, size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{63}, size_t{64}, size_t{65}, size_t{200}}) {
    const Key32 key = seeded_key(rng);
    std::vector<uint64_t> a(n / 8 + 1, 0);
    prg_add(key, 1, &a);
    std::vector<uint8_t> stream(a.size() * 8, 0);
    const uint8_t zero_nonce[12] = {0};
    builtin::chacha20_xor(key, zero_nonce, 0, stream.data(), stream.size());
    for (size_t i = 0; i < a.size(); ++i) {
      uint64_t w = 0;
      for (int b = 7; b >= 0; --b) w = (w << 8) | stream[i * 8 + b];
      CHECK(w == a[i]);
    }
    Bytes plain(n), aad(n % 23);
    for (auto& b : plain) b = static_cast<uint8_t>(rng());
    for (auto& b : aad) b = static_cast<uint8_t>(rng());
    const Bytes sealed = aead_seal(key, aad, plain);  // libcrypto: nonce ‖ ciphertext ‖ tag
    CHECK(builtin::aead_seal(key, sealed.data(), aad, plain) == Bytes(sealed.begin() + 12, sealed.end()));
    Bytes opened;
    CHECK(builtin::aead_open(key, sealed.data(), aad, sealed.data() + 12, sealed.size() - 12, &opened));
    CHECK(opened == plain);
    Bytes bad(sealed.begin() + 12, sealed.end());
    bad[bad.size() - 1] ^= 1;
    CHECK_FALSE(builtin::aead_open(key, sealed.data(), aad, bad.data(), bad.size(), &opened));
    CHECK(opened.empty());
    CHECK(builtin::hkdf_sha256(key, std::string(n, 'i')) == hkdf_sha256(key, std::string(n, 'i')));
  }
  Key32 ikm{};
  for (int i = 0; i < 32; ++i) ikm[i] = static_cast<uint8_t>(i);
  CHECK(builtin::hkdf_sha256(ikm, "pocketllm test") == hex32("323b0df9ee865a58f2bddaef767172d97682d2dc0d1988cfeac20312afa65664"));
  uint8_t r1[32] = {0}, r2[32] = {0};
  builtin::os_random(r1, 32);
  builtin::os_random(r2, 32);
  CHECK(std::memcmp(r1, r2, 32) != 0);
}
