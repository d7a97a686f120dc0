// The network front of the service: HTTP/1.1 with keep-alive over TLS 1.2+ (OpenSSL) or, only when
// asked for, plain TCP; Boost.Beast on Asio with a thread pool. Enforces the header and body limits
// and read timeouts, ticks the service's rounds, and shuts down gracefully on SIGTERM/SIGINT.
// This header keeps Beast out of every other TU.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "pocketllm/common/status.h"
#include "pocketllm/server/http_options.h"
#include "pocketllm/server/service.h"

namespace pocketllm::server {


// Serves until SIGTERM or SIGINT, then stops accepting, lets in-flight requests finish and returns.
Status run_http_server(const HttpServerOptions& options, Service& service);

}  // namespace pocketllm::server
