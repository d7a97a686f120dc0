// Mobile build: no network code in the library; the app's HTTP stack is the transport.
#include "builtin_transport.h"

namespace pllm_abi {

pocketllm::Result<std::unique_ptr<pocketllm::Transport>> make_builtin_transport(const pllm_device_params&) {
  return pocketllm::unsupported(
      "this is the mobile build of pocketllm, which has no built-in HTTPS client: set pllm_device_params.transport to a "
      "function that sends requests through the app's HTTP stack (docs/mobile.md)");
}

}  // namespace pllm_abi
