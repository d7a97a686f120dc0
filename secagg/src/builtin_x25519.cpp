// X25519 written from RFC 7748: GF(2^255 - 19) in five 51-bit limbs (products in unsigned __int128), the
// Montgomery ladder with constant-time conditional swaps, inversion by Fermat (z^(p-2)).
#include <cstring>

#include "builtin_crypto.h"

namespace pocketllm::secagg::builtin {
namespace {

using u64 = uint64_t;
using u128 = unsigned __int128;
constexpr u64 kMask51 = (u64{1} << 51) - 1;

struct Fe {
  u64 v[5];
};

Fe fe_from_bytes(const uint8_t b[32]) {
  u64 w[4];
  for (int i = 0; i < 4; ++i) {
    w[i] = 0;
    for (int j = 7; j >= 0; --j) w[i] = (w[i] << 8) | b[8 * i + j];
  }
  Fe f;
  f.v[0] = w[0] & kMask51;
  f.v[1] = ((w[0] >> 51) | (w[1] << 13)) & kMask51;
  f.v[2] = ((w[1] >> 38) | (w[2] << 26)) & kMask51;
  f.v[3] = ((w[2] >> 25) | (w[3] << 39)) & kMask51;
  f.v[4] = (w[3] >> 12) & kMask51;  // the top bit (255) is ignored
  return f;
}

Fe fe_add(const Fe& a, const Fe& b) {
  Fe r;
  for (int i = 0; i < 5; ++i) r.v[i] = a.v[i] + b.v[i];
  return r;
}

// a - b, with 2p added so no limb goes negative (b's limbs are below 2^51 + 2^32: products and loads).
Fe fe_sub(const Fe& a, const Fe& b) {
  Fe r;
  r.v[0] = a.v[0] + 0xfffffffffffdaull - b.v[0];
  for (int i = 1; i < 5; ++i) r.v[i] = a.v[i] + 0xffffffffffffeull - b.v[i];
  return r;
}

// Limbs of up to 2^128 carried down to 51 bits (limb 1 may keep a carry below 2^32); the carry out of the
// top limb wraps around times 19 (2^255 = 19 mod p).
Fe fe_carry(u128 t[5]) {
  Fe r;
  u128 c = 0;
  for (int i = 0; i < 5; ++i) {
    t[i] += c;
    r.v[i] = static_cast<u64>(t[i]) & kMask51;
    c = t[i] >> 51;
  }
  const u128 x = static_cast<u128>(r.v[0]) + c * 19;
  r.v[0] = static_cast<u64>(x) & kMask51;
  r.v[1] += static_cast<u64>(x >> 51);
  return r;
}

Fe fe_mul(const Fe& a, const Fe& b) {
  const u64 b1 = b.v[1] * 19, b2 = b.v[2] * 19, b3 = b.v[3] * 19, b4 = b.v[4] * 19;
  u128 t[5];
  t[0] = (u128)a.v[0] * b.v[0] + (u128)a.v[1] * b4 + (u128)a.v[2] * b3 + (u128)a.v[3] * b2 + (u128)a.v[4] * b1;
  t[1] = (u128)a.v[0] * b.v[1] + (u128)a.v[1] * b.v[0] + (u128)a.v[2] * b4 + (u128)a.v[3] * b3 + (u128)a.v[4] * b2;
  t[2] = (u128)a.v[0] * b.v[2] + (u128)a.v[1] * b.v[1] + (u128)a.v[2] * b.v[0] + (u128)a.v[3] * b4 + (u128)a.v[4] * b3;
  t[3] = (u128)a.v[0] * b.v[3] + (u128)a.v[1] * b.v[2] + (u128)a.v[2] * b.v[1] + (u128)a.v[3] * b.v[0] + (u128)a.v[4] * b4;
  t[4] = (u128)a.v[0] * b.v[4] + (u128)a.v[1] * b.v[3] + (u128)a.v[2] * b.v[2] + (u128)a.v[3] * b.v[1] + (u128)a.v[4] * b.v[0];
  return fe_carry(t);
}

Fe fe_sq(const Fe& a) { return fe_mul(a, a); }

Fe fe_mul_small(const Fe& a, u64 k) {
  u128 t[5];
  for (int i = 0; i < 5; ++i) t[i] = (u128)a.v[i] * k;
  return fe_carry(t);
}

// Swaps a and b when bit is 1, without branching on it.
void fe_cswap(Fe* a, Fe* b, u64 bit) {
  const u64 mask = ~(bit - 1);  // bit 1: all ones; bit 0: zero
  for (int i = 0; i < 5; ++i) {
    const u64 x = mask & (a->v[i] ^ b->v[i]);
    a->v[i] ^= x;
    b->v[i] ^= x;
  }
}

// z^(p-2) = z^(2^255 - 21): the exponent's bits are public, so a plain square-and-multiply is fine.
Fe fe_invert(const Fe& z) {
  Fe r = z;  // bit 254 is the leading one
  for (int bit = 253; bit >= 0; --bit) {
    r = fe_sq(r);
    // 2^255 - 21 in binary: bits 254..5 all one, then 01011 (bits 4..0): bits 2 and 4 are zero.
    if (bit != 2 && bit != 4) r = fe_mul(r, z);
  }
  return r;
}

// Every limb below 2^51 (the value below 2^255 + 19·small, not yet below p).
void fe_normalize(Fe* f) {
  for (int pass = 0; pass < 2; ++pass) {
    for (int i = 0; i < 4; ++i) {
      f->v[i + 1] += f->v[i] >> 51;
      f->v[i] &= kMask51;
    }
    f->v[0] += 19 * (f->v[4] >> 51);
    f->v[4] &= kMask51;
  }
}

void fe_to_bytes(uint8_t out[32], Fe f) {
  // The canonical value: subtract p when f >= p (q is 1 exactly then).
  fe_normalize(&f);
  u64 q = (f.v[0] + 19) >> 51;
  q = (f.v[1] + q) >> 51;
  q = (f.v[2] + q) >> 51;
  q = (f.v[3] + q) >> 51;
  q = (f.v[4] + q) >> 51;
  f.v[0] += 19 * q;
  u64 c = f.v[0] >> 51;
  f.v[0] &= kMask51;
  for (int i = 1; i < 5; ++i) {
    f.v[i] += c;
    c = f.v[i] >> 51;
    f.v[i] &= kMask51;
  }
  const u64 w0 = f.v[0] | (f.v[1] << 51), w1 = (f.v[1] >> 13) | (f.v[2] << 38), w2 = (f.v[2] >> 26) | (f.v[3] << 25),
            w3 = (f.v[3] >> 39) | (f.v[4] << 12);
  const u64 w[4] = {w0, w1, w2, w3};
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 8; ++j) out[8 * i + j] = static_cast<uint8_t>(w[i] >> (8 * j));
}

}  // namespace

Key32 x25519(const Key32& scalar, const Key32& u) {
  uint8_t k[32];
  std::memcpy(k, scalar.data(), 32);
  k[0] &= 248;
  k[31] &= 127;
  k[31] |= 64;
  const Fe x1 = fe_from_bytes(u.data());
  Fe x2 = {{1, 0, 0, 0, 0}}, z2 = {{0, 0, 0, 0, 0}}, x3 = x1, z3 = {{1, 0, 0, 0, 0}};
  u64 swap = 0;
  for (int t = 254; t >= 0; --t) {
    const u64 bit = (k[t >> 3] >> (t & 7)) & 1;
    swap ^= bit;
    fe_cswap(&x2, &x3, swap);
    fe_cswap(&z2, &z3, swap);
    swap = bit;
    const Fe a = fe_add(x2, z2), aa = fe_sq(a), b = fe_sub(x2, z2), bb = fe_sq(b), e = fe_sub(aa, bb);
    const Fe c = fe_add(x3, z3), d = fe_sub(x3, z3), da = fe_mul(d, a), cb = fe_mul(c, b);
    x3 = fe_sq(fe_add(da, cb));
    z3 = fe_mul(x1, fe_sq(fe_sub(da, cb)));
    x2 = fe_mul(aa, bb);
    z2 = fe_mul(e, fe_add(aa, fe_mul_small(e, 121665)));
  }
  fe_cswap(&x2, &x3, swap);
  fe_cswap(&z2, &z3, swap);
  Key32 out;
  fe_to_bytes(out.data(), fe_mul(x2, fe_invert(z2)));
  std::memset(k, 0, sizeof k);
  return out;
}

Key32 x25519_base(const Key32& scalar) {
  Key32 nine{};
  nine[0] = 9;
  return x25519(scalar, nine);
}

}  // namespace pocketllm::secagg::builtin
