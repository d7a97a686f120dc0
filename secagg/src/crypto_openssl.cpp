// The secure-aggregation suite over OpenSSL's libcrypto (desktop builds). The mobile profile carries the
// same suite built in (crypto_builtin.cpp); the tests check each against the other.
#include "pocketllm/secagg/crypto.h"

#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <cstring>
#include <memory>
#include <stdexcept>

namespace pocketllm::secagg {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

// A failure of libcrypto on valid input (allocation, a missing algorithm) is not something a caller can
// act on; it stops the process rather than producing a weak key or an unencrypted share.
[[noreturn]] void crypto_failure(const char* what) { throw std::runtime_error(std::string("libcrypto: ") + what); }

// Fetched once: OpenSSL 3 otherwise looks each algorithm up (locks, string compares) on every call.
const EVP_CIPHER* cipher(const char* name) {
  EVP_CIPHER* c = EVP_CIPHER_fetch(nullptr, name, nullptr);
  if (!c) crypto_failure(name);
  return c;  // kept for the process's lifetime
}
const EVP_CIPHER* aead_cipher() {
  static const EVP_CIPHER* c = cipher("ChaCha20-Poly1305");
  return c;
}
const EVP_CIPHER* stream_cipher() {
  static const EVP_CIPHER* c = cipher("ChaCha20");
  return c;
}

Pkey private_key(const Key32& secret) {
  Pkey k(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, secret.data(), secret.size()));
  if (!k) crypto_failure("X25519 private key");
  return k;
}

}  // namespace

void random_bytes(uint8_t* out, size_t n) {
  if (RAND_bytes(out, static_cast<int>(n)) != 1) crypto_failure("RAND_bytes");
}

void secure_wipe(void* p, size_t n) { OPENSSL_cleanse(p, n); }

Key32 random_key() {
  Key32 k;
  random_bytes(k.data(), k.size());
  return k;
}

Result<KeyPair> x25519_from_secret(const Key32& secret) {
  Pkey k = private_key(secret);
  KeyPair kp;
  kp.secret = secret;
  size_t len = kp.public_key.size();
  if (EVP_PKEY_get_raw_public_key(k.get(), kp.public_key.data(), &len) != 1 || len != 32) crypto_failure("X25519 public key");
  return kp;
}

Result<KeyPair> x25519_generate() { return x25519_from_secret(random_key()); }

X25519Secret::X25519Secret(const Key32& secret) : pkey_(private_key(secret).release()) {}

X25519Secret::~X25519Secret() { EVP_PKEY_free(static_cast<EVP_PKEY*>(pkey_)); }

Result<Key32> X25519Secret::agree(const Key32& peer_public) const {
  Pkey peer(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, peer_public.data(), peer_public.size()));
  if (!peer) return invalid_argument("secagg: a peer's public key is not an X25519 key");
  PkeyCtx ctx(EVP_PKEY_CTX_new(static_cast<EVP_PKEY*>(pkey_), nullptr));
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1) crypto_failure("X25519 derive init");
  if (EVP_PKEY_derive_set_peer(ctx.get(), peer.get()) != 1) return invalid_argument("secagg: a peer's public key was refused");
  Key32 out{};
  size_t len = out.size();
  // OpenSSL refuses an all-zero result (a small-order point) here.
  if (EVP_PKEY_derive(ctx.get(), out.data(), &len) != 1 || len != 32)
    return invalid_argument("secagg: key agreement with a peer's public key failed (a small-order key?)");
  return out;
}

Result<Key32> x25519_agree(const Key32& secret, const Key32& peer_public) { return X25519Secret(secret).agree(peer_public); }

Key32 hkdf_sha256(const Key32& ikm, const std::string& info) {
  PkeyCtx ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr));
  Key32 out{};
  size_t len = out.size();
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 || EVP_PKEY_CTX_set_hkdf_md(ctx.get(), EVP_sha256()) != 1 ||
      EVP_PKEY_CTX_set1_hkdf_key(ctx.get(), ikm.data(), static_cast<int>(ikm.size())) != 1 ||
      EVP_PKEY_CTX_add1_hkdf_info(ctx.get(), reinterpret_cast<const unsigned char*>(info.data()), static_cast<int>(info.size())) != 1 ||
      EVP_PKEY_derive(ctx.get(), out.data(), &len) != 1 || len != 32)
    crypto_failure("HKDF-SHA256");
  return out;
}

Bytes aead_seal(const Key32& key, const Bytes& aad, const Bytes& plaintext) {
  Bytes out(12 + plaintext.size() + 16);
  random_bytes(out.data(), 12);
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), aead_cipher(), nullptr, key.data(), out.data()) != 1 ||
      (!aad.empty() && EVP_EncryptUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1) ||
      EVP_EncryptUpdate(ctx.get(), out.data() + 12, &len, plaintext.data(), static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), out.data() + 12 + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, 16, out.data() + 12 + plaintext.size()) != 1)
    crypto_failure("ChaCha20-Poly1305 seal");
  return out;
}

Result<Bytes> aead_open(const Key32& key, const Bytes& aad, const Bytes& sealed) {
  if (sealed.size() < kAeadOverhead) return corrupt("secagg: a sealed share is shorter than its nonce and tag");
  const size_t n = sealed.size() - kAeadOverhead;
  Bytes out(n);
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), aead_cipher(), nullptr, key.data(), sealed.data()) != 1 ||
      (!aad.empty() && EVP_DecryptUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1) ||
      EVP_DecryptUpdate(ctx.get(), out.data(), &len, sealed.data() + 12, static_cast<int>(n)) != 1)
    crypto_failure("ChaCha20-Poly1305 open");
  Bytes tag(sealed.end() - 16, sealed.end());
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, 16, tag.data()) != 1) crypto_failure("ChaCha20-Poly1305 tag");
  if (EVP_DecryptFinal_ex(ctx.get(), out.data() + len, &len) != 1)
    return corrupt("secagg: a sealed share failed authentication (wrong key, sender, receiver or round, or altered)");
  return out;
}

void prg_add(const Key32& seed, int sign, std::vector<uint64_t>* v) {
  if (v->empty()) return;
  std::vector<uint8_t> stream(v->size() * 8, 0);
  const uint8_t iv[16] = {0};  // OpenSSL's ChaCha20 IV: LE32 block counter (0) ‖ the 12-byte nonce (zeros)
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), stream_cipher(), nullptr, seed.data(), iv) != 1 ||
      EVP_EncryptUpdate(ctx.get(), stream.data(), &len, stream.data(), static_cast<int>(stream.size())) != 1)
    crypto_failure("ChaCha20");
  for (size_t i = 0; i < v->size(); ++i) {
    uint64_t w = 0;
    for (int b = 7; b >= 0; --b) w = (w << 8) | stream[i * 8 + b];
    (*v)[i] = sign >= 0 ? (*v)[i] + w : (*v)[i] - w;
  }
}

}  // namespace pocketllm::secagg
