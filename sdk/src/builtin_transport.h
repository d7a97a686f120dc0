// The device's built-in HTTPS transport when the build has one (desktop), or a clear refusal (mobile).
#pragma once

#include <memory>

#include "pocketllm/common/status.h"
#include "pocketllm/federation/transport.h"
#include "pocketllm/pocketllm.h"

namespace pllm_abi {
pocketllm::Result<std::unique_ptr<pocketllm::Transport>> make_builtin_transport(const pllm_device_params& p);
}  // namespace pllm_abi
