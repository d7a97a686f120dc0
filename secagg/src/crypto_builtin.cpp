// The secure-aggregation suite without libcrypto (the mobile profile): crypto.h over builtin_crypto.h.
#include <cstring>

#include "builtin_crypto.h"
#include "pocketllm/secagg/crypto.h"

namespace pocketllm::secagg {
namespace {

bool all_zero(const Key32& k) {
  uint8_t acc = 0;
  for (uint8_t b : k) acc |= b;
  return acc == 0;
}

}  // namespace

void random_bytes(uint8_t* out, size_t n) { builtin::os_random(out, n); }

void secure_wipe(void* p, size_t n) {
  volatile uint8_t* v = static_cast<volatile uint8_t*>(p);
  while (n--) *v++ = 0;
}

Key32 random_key() {
  Key32 k;
  random_bytes(k.data(), k.size());
  return k;
}

Result<KeyPair> x25519_from_secret(const Key32& secret) {
  KeyPair kp;
  kp.secret = secret;
  kp.public_key = builtin::x25519_base(secret);
  return kp;
}

Result<KeyPair> x25519_generate() { return x25519_from_secret(random_key()); }

X25519Secret::X25519Secret(const Key32& secret) : pkey_(new Key32(secret)) {}

X25519Secret::~X25519Secret() {
  auto* k = static_cast<Key32*>(pkey_);
  secure_wipe(k->data(), k->size());
  delete k;
}

Result<Key32> X25519Secret::agree(const Key32& peer_public) const {
  const Key32 out = builtin::x25519(*static_cast<const Key32*>(pkey_), peer_public);
  // As libcrypto does: an all-zero secret means a small-order peer key.
  if (all_zero(out)) return invalid_argument("secagg: key agreement with a peer's public key failed (a small-order key?)");
  return out;
}

Result<Key32> x25519_agree(const Key32& secret, const Key32& peer_public) { return X25519Secret(secret).agree(peer_public); }

Key32 hkdf_sha256(const Key32& ikm, const std::string& info) { return builtin::hkdf_sha256(ikm, info); }

Bytes aead_seal(const Key32& key, const Bytes& aad, const Bytes& plaintext) {
  uint8_t nonce[12];
  random_bytes(nonce, sizeof nonce);
  Bytes sealed = builtin::aead_seal(key, nonce, aad, plaintext);
  sealed.insert(sealed.begin(), nonce, nonce + 12);
  return sealed;
}

Result<Bytes> aead_open(const Key32& key, const Bytes& aad, const Bytes& sealed) {
  if (sealed.size() < kAeadOverhead) return corrupt("secagg: a sealed share is shorter than its nonce and tag");
  Bytes out;
  if (!builtin::aead_open(key, sealed.data(), aad, sealed.data() + 12, sealed.size() - 12, &out))
    return corrupt("secagg: a sealed share failed authentication (wrong key, sender, receiver or round, or altered)");
  return out;
}

void prg_add(const Key32& seed, int sign, std::vector<uint64_t>* v) {
  if (v->empty()) return;
  std::vector<uint8_t> stream(v->size() * 8, 0);
  const uint8_t nonce[12] = {0};
  builtin::chacha20_xor(seed, nonce, 0, stream.data(), stream.size());
  for (size_t i = 0; i < v->size(); ++i) {
    uint64_t w = 0;
    for (int b = 7; b >= 0; --b) w = (w << 8) | stream[i * 8 + b];
    (*v)[i] = sign >= 0 ? (*v)[i] + w : (*v)[i] - w;
  }
}

}  // namespace pocketllm::secagg
