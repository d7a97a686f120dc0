// The built-in transport: HTTPS (OpenSSL, Boost.Beast) with certificate checks against the system
// store, a CA file or a pinned certificate. Library pocketllm_federation_https; the federation module
// itself links no network code.
#pragma once

#include <memory>
#include <string>

#include "pocketllm/federation/transport.h"

namespace pocketllm {

struct ServerConnection {
  std::string url;            // https://host:port
  std::string ca_file;        // trusted CAs (PEM); empty: the system store
  std::string pinned_sha256;  // or a pinned server certificate
  int timeout_ms = 30000;     // per request (connect, send, receive)
};

Result<std::unique_ptr<Transport>> make_https_transport(const ServerConnection& server);

}  // namespace pocketllm
