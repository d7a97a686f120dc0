// The building blocks of secure aggregation against independent references: RFC 7748's X25519 vectors, an
// HKDF value computed with Python's hmac module, RFC 8439's ChaCha20 block for the mask generator, Shamir
// reconstruction from every subset, the graph's structure, and the fixed-point encoding's bounds.
#include <catch2/catch.hpp>

#include <cmath>
#include <set>
#include <string>

#include "hex.h"
#include "pocketllm/secagg/crypto.h"
#include "pocketllm/secagg/encoding.h"
#include "pocketllm/secagg/graph.h"
#include "pocketllm/secagg/shamir.h"

using namespace pocketllm::secagg;

namespace {

using test::hex32;

}  // namespace

TEST_CASE("X25519 reproduces the RFC 7748 section 6.1 exchange", "[secagg][primitives]") {
  const Key32 alice = hex32("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  const Key32 bob = hex32("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
  auto a = x25519_from_secret(alice);
  auto b = x25519_from_secret(bob);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->public_key == hex32("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"));
  CHECK(b->public_key == hex32("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"));
  const Key32 shared = hex32("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
  auto ab = x25519_agree(alice, b->public_key);
  auto ba = x25519_agree(bob, a->public_key);
  REQUIRE(ab);
  REQUIRE(ba);
  CHECK(*ab == shared);
  CHECK(*ba == shared);
  // A small-order point (all zeros) gives an all-zero secret: refused.
  CHECK_FALSE(x25519_agree(alice, Key32{}));
}

TEST_CASE("HKDF-SHA256 with an empty salt matches an independent computation", "[secagg][primitives]") {
  Key32 ikm{};
  for (int i = 0; i < 32; ++i) ikm[i] = static_cast<uint8_t>(i);
  // python3: prk = hmac(b"\0"*32, ikm, sha256); okm = hmac(prk, b"pocketllm test" + b"\x01", sha256)
  CHECK(hkdf_sha256(ikm, "pocketllm test") == hex32("323b0df9ee865a58f2bddaef767172d97682d2dc0d1988cfeac20312afa65664"));
  CHECK(hkdf_sha256(ikm, "pocketllm tesT") != hkdf_sha256(ikm, "pocketllm test"));
}

TEST_CASE("ChaCha20-Poly1305 sealing authenticates the key, the associated data and every byte", "[secagg][primitives]") {
  const Key32 key = random_key();
  const Bytes aad = {1, 2, 3};
  const Bytes plain(64, 7);
  const Bytes sealed = aead_seal(key, aad, plain);
  REQUIRE(sealed.size() == plain.size() + kAeadOverhead);
  auto opened = aead_open(key, aad, sealed);
  REQUIRE(opened);
  CHECK(*opened == plain);
  CHECK(aead_seal(key, aad, plain) != sealed);  // a fresh nonce each time
  CHECK_FALSE(aead_open(random_key(), aad, sealed));
  CHECK_FALSE(aead_open(key, Bytes{1, 2, 4}, sealed));
  for (size_t i : {size_t{0}, size_t{12}, size_t{40}, sealed.size() - 1}) {
    Bytes bad = sealed;
    bad[i] ^= 1;
    CHECK_FALSE(aead_open(key, aad, bad));
  }
  CHECK_FALSE(aead_open(key, aad, Bytes(10, 0)));
}

TEST_CASE("the mask generator is the ChaCha20 keystream and cancels exactly", "[secagg][primitives]") {
  // RFC 8439 appendix A.1, test vector 1: key 0, nonce 0, block 0 starts 76 b8 e0 ad a0 f1 3d 90 40 5d 6a e5
  // 53 86 bd 28; the words are its bytes, little-endian.
  std::vector<uint64_t> v(3, 0);
  prg_add(Key32{}, 1, &v);
  CHECK(v[0] == 0x903df1a0ade0b876ull);
  CHECK(v[1] == 0x28bd8653e56a5d40ull);
  const Key32 seed = random_key();
  std::vector<uint64_t> w = {5, 0, ~uint64_t{0}};
  prg_add(seed, 1, &w);
  CHECK(w != std::vector<uint64_t>{5, 0, ~uint64_t{0}});
  prg_add(seed, -1, &w);
  CHECK(w == std::vector<uint64_t>{5, 0, ~uint64_t{0}});
}

TEST_CASE("GF(2^8) multiplication agrees with carry-less multiplication reduced by the AES polynomial", "[secagg][primitives]") {
  auto slow = [](uint8_t a, uint8_t b) {
    uint16_t p = 0;
    for (int i = 0; i < 8; ++i)
      if (b & (1 << i)) p ^= static_cast<uint16_t>(a << i);
    for (int i = 15; i >= 8; --i)
      if (p & (1 << i)) p ^= static_cast<uint16_t>(0x11b << (i - 8));
    return static_cast<uint8_t>(p);
  };
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; b += 7) CHECK(gf256_mul(static_cast<uint8_t>(a), static_cast<uint8_t>(b)) == slow(a, b));
    if (a) CHECK(gf256_mul(static_cast<uint8_t>(a), gf256_inv(static_cast<uint8_t>(a))) == 1);
  }
}

TEST_CASE("Shamir: any t shares rebuild the secret, t - 1 do not, an altered share is detected", "[secagg][primitives]") {
  const Key32 k = random_key();
  const Bytes secret(k.begin(), k.end());
  auto shares = shamir_split(secret, 3, 5);
  REQUIRE(shares);
  for (int a = 0; a < 5; ++a)
    for (int b = a + 1; b < 5; ++b)
      for (int c = b + 1; c < 5; ++c) {
        auto s = shamir_combine({(*shares)[a], (*shares)[b], (*shares)[c]}, 3);
        REQUIRE(s);
        CHECK(*s == secret);
      }
  CHECK_FALSE(shamir_combine({(*shares)[0], (*shares)[1]}, 3));
  // Two shares interpolated as if the threshold were 2 give a different value.
  auto wrong = shamir_combine({(*shares)[0], (*shares)[1]}, 2);
  REQUIRE(wrong);
  CHECK(*wrong != secret);
  auto all = shamir_combine(*shares, 3);
  REQUIRE(all);
  CHECK(*all == secret);
  std::vector<Share> altered = *shares;
  altered[4].y[7] ^= 0x10;
  CHECK_FALSE(shamir_combine(altered, 3));
  std::vector<Share> repeated = {(*shares)[0], (*shares)[0], (*shares)[1]};
  CHECK_FALSE(shamir_combine(repeated, 3));
  CHECK_FALSE(shamir_split(secret, 4, 3));
  CHECK_FALSE(shamir_split(secret, 1, 256));
  auto big = shamir_split(secret, 128, 255);
  REQUIRE(big);
  auto back = shamir_combine(std::vector<Share>(big->begin() + 100, big->begin() + 228), 128);
  REQUIRE(back);
  CHECK(*back == secret);
}

TEST_CASE("the SecAgg+ graph is symmetric, k-regular, seeded, and complete when k >= n - 1", "[secagg][primitives]") {
  for (uint32_t n : {2u, 3u, 7u, 50u, 1000u}) {
    const Graph g(42, n, default_degree(n));
    const uint32_t k = g.degree();
    CHECK(k <= n - 1);
    CHECK(k == std::min(n - 1, default_degree(n)));
    for (uint32_t i = 0; i < n; i += (n > 100 ? 37 : 1)) {
      const auto nb = g.neighbours(i);
      CHECK(nb.size() == k);
      std::set<uint8_t> points;
      for (uint32_t j : nb) {
        CHECK(j != i);
        CHECK(g.adjacent(j, i));
        points.insert(g.share_point(i, j));
      }
      CHECK(points.size() == k);
      if (!points.empty()) CHECK((*points.begin() == 1 && *points.rbegin() == k));
      CHECK(g.share_point(i, i) == 0);
    }
  }
  const Graph a(1, 1000, 40), b(1, 1000, 40), c(2, 1000, 40);
  CHECK(a.neighbours(5) == b.neighbours(5));
  CHECK(a.neighbours(5) != c.neighbours(5));
  CHECK(Graph(1, 10, 3).degree() == 4);   // rounded up to even
  CHECK(Graph(1, 10, 30).degree() == 9);  // complete
  CHECK(default_degree(100) == 40);
  CHECK(default_degree(1000) == 60);
  CHECK(default_share_threshold(40) == 21);
}

TEST_CASE("fixed-point encoding: clipping, weights, exact decoding, and the capacity bound", "[secagg][primitives]") {
  InputSpec s;
  s.tau = 3;
  s.scale_bits = 20;
  s.bound = 0.5;
  s.max_weight = 16;
  auto x = encode_input(s, {0.25f, -2.0f, 0.0f}, 100);  // weight capped at 16, -2 clipped to -0.5
  REQUIRE(x);
  REQUIRE(x->size() == 4);
  CHECK(as_signed((*x)[0]) == 16 * (1 << 18));
  CHECK(as_signed((*x)[1]) == -16 * (1 << 19));
  CHECK((*x)[3] == 16);
  auto y = encode_input(s, {-0.125f, 0.5f, 0.0f}, 4);
  REQUIRE(y);
  std::vector<uint64_t> sum(4);
  for (int k = 0; k < 4; ++k) sum[k] = (*x)[k] + (*y)[k];
  auto mean = decode_mean(s, sum, 2, 0);
  REQUIRE(mean);
  CHECK((*mean)[0] == Approx((16 * 0.25 + 4 * -0.125) / 20.0).epsilon(1e-6));
  CHECK((*mean)[1] == Approx((16 * -0.5 + 4 * 0.5) / 20.0).epsilon(1e-6));
  CHECK_FALSE(encode_input(s, {NAN, 0, 0}, 1));
  CHECK_FALSE(encode_input(s, {0, 0}, 1));
  CHECK_FALSE(encode_input(s, {0, 0, 0}, 0));
  // A sum beyond what clipped inputs can reach is refused (a device that skipped clipping).
  std::vector<uint64_t> forged = sum;
  forged[2] = uint64_t{1} << 40;
  CHECK_FALSE(decode_mean(s, forged, 2, 0));
  forged = sum;
  forged[3] = 33;  // weight above n * max_weight
  CHECK_FALSE(decode_mean(s, forged, 2, 0));
  CHECK(check_capacity(s, 1000));
  s.scale_bits = 52;
  CHECK_FALSE(check_capacity(s, 1000));
  s.scale_bits = 40;
  s.uniform_weights = true;
  s.noise_variance = 1e30;
  CHECK_FALSE(check_capacity(s, 10));
}

TEST_CASE("each device's Skellam noise has the variance the round asks for, and averages to zero", "[secagg][primitives]") {
  InputSpec s;
  s.tau = 1;
  s.scale_bits = 20;
  s.bound = 1;
  s.uniform_weights = true;
  s.noise_variance = 1e6;
  const int n = 4000;
  double sum = 0, sum2 = 0;
  for (int i = 0; i < n; ++i) {
    auto x = encode_input(s, {0.0f}, 1);
    REQUIRE(x);
    const double v = static_cast<double>(as_signed((*x)[0]));
    CHECK(v == std::floor(v));  // an integer: it survives the fixed-point encoding
    sum += v;
    sum2 += v * v;
  }
  const double mean = sum / n, var = sum2 / n - mean * mean;
  CHECK(std::fabs(mean) < 5 * std::sqrt(s.noise_variance / n));
  CHECK(var == Approx(s.noise_variance).epsilon(0.12));  // ~5.4 standard errors of the variance (p ~ 1e-7)
  s.noise_variance = 0;
  CHECK(as_signed(encode_input(s, {0.0f}, 1).value()[0]) == 0);  // the control: no noise asked, none added
}
