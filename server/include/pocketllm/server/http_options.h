// The network front's settings (listen address, TLS, limits, timeouts), in a header without the
// network library so the configuration parser (config.h) stays in the Beast-free core.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

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
  int max_connections = 4096;        // open connections at once (lowered to the fd limit − 64); beyond: closed at accept
  int max_connections_per_address = 256;  // from one IP address; beyond: closed at accept
  int drain_timeout_ms = 5000;       // after a 413/431, the rest of a request is discarded for at most this long
  int unauthenticated_idle_ms = 2000; // keep-alive wait of a connection that has made no authenticated request
  int shutdown_grace_ms = 5000;      // in-flight requests get this long after SIGTERM
  std::string port_file;             // written (atomically) with the bound port once listening
  // SO_REUSEPORT: replicas on one host listen on the same port and the kernel spreads new connections
  // over them (each replica must set it; a replica that dies leaves the others serving).
  bool reuse_port = false;
  std::function<void(const std::string&)> log;
  // One line per request (a JSON object: request_id, method, route, status, ms, remote) through `log`.
  // Every reply carries X-Request-Id: the client's own (up to 64 of [A-Za-z0-9._-]) or one made here.
  bool access_log = false;
};

}  // namespace pocketllm::server
