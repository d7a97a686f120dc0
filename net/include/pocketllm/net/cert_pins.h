// Pinned server identities: a device that trusts exactly the server it was given instead of a CA.
// A pin list is comma-separated; each pin is either
//   sha256/BASE64  the SHA-256 of the certificate's SubjectPublicKeyInfo (DER): a *key* pin, as OkHttp
//                  and Android's network security configuration write them. It survives a renewal that
//                  keeps the key (certbot --reuse-key), so it is the pin to give a fleet — with a backup
//                  pin of a key kept offline, for when the key itself must change;
//   64 hex digits  the SHA-256 of the whole certificate (DER): changes with every renewal.
// The server's leaf certificate matching any pin is trusted; the chain and the name are then not checked.
// `pocketllm-server` logs the key pin of the certificate it serves (docs/server.md, "Certificates").
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "pocketllm/common/sha256.h"
#include "pocketllm/common/status.h"

namespace pocketllm::net {

struct CertPins {
  std::vector<Sha256Digest> key;   // SPKI digests
  std::vector<Sha256Digest> cert;  // whole-certificate digests
  bool empty() const { return key.empty() && cert.empty(); }
  // Whether a leaf with this DER certificate and DER SubjectPublicKeyInfo matches a pin.
  bool accepts(std::string_view cert_der, std::string_view spki_der) const;
};

// Parses a pin list; an empty text gives no pins. A malformed pin is an error naming it.
Result<CertPins> parse_pins(std::string_view text);

// "sha256/BASE64" of a DER SubjectPublicKeyInfo; 64 lowercase hex digits of a DER certificate.
std::string key_pin(std::string_view spki_der);
std::string cert_pin(std::string_view cert_der);

}  // namespace pocketllm::net
