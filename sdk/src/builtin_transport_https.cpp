// Desktop build: the built-in Beast/OpenSSL HTTPS client.
#include "builtin_transport.h"

#include "pocketllm/federation/https_transport.h"

namespace pllm_abi {

pocketllm::Result<std::unique_ptr<pocketllm::Transport>> make_builtin_transport(const pllm_device_params& p) {
  return pocketllm::make_https_transport(pocketllm::ServerConnection{
      p.server_url, p.ca_file ? p.ca_file : "", p.pinned_sha256 ? p.pinned_sha256 : "", p.timeout_ms > 0 ? p.timeout_ms : 30000});
}

}  // namespace pllm_abi
