// The network front of the service: HTTP/1.1 with keep-alive over TLS 1.2+ (OpenSSL) or, only when
// asked for, plain TCP; Boost.Beast on Asio with a thread pool. Enforces the header and body limits
// and read timeouts, ticks the service's rounds, and shuts down gracefully on SIGTERM/SIGINT.
// This header keeps Beast out of every other TU.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "pocketllm/common/status.h"
#include "pocketllm/server/service.h"

namespace pocketllm::server {

struct HttpServerOptions {
  std::string address = "0.0.0.0";
  uint16_t port = 8443;              // 0: any free port (written to port_file)
  int threads = 2;
  bool tls = true;
  std::string cert_file, key_file;   // PEM; required with tls
  uint64_t max_body_bytes = 1 << 20;
  uint32_t max_header_bytes = 16 << 10;
  int header_timeout_ms = 15000;     // the whole request head, idle keep-alive wait included
  int body_timeout_ms = 30000;
  int tick_ms = 100;                 // how often rounds are checked against their deadlines
  int shutdown_grace_ms = 5000;      // in-flight requests get this long after SIGTERM
  std::string port_file;             // written (atomically) with the bound port once listening
  std::function<void(const std::string&)> log;
};

// Serves until SIGTERM or SIGINT, then stops accepting, lets in-flight requests finish and returns.
Status run_http_server(const HttpServerOptions& options, Service& service);

}  // namespace pocketllm::server
