// A small synchronous HTTP/1.1 client over TLS (OpenSSL) or plain TCP, with keep-alive, timeouts on
// every operation, certificate verification against the system CA store, a CA file or pinned
// keys or certificates, and a count of the bytes it put on and took off the wire (TLS records included).
// Used by devices to talk to the aggregation server and by the server's tests. One instance is one
// connection: not thread-safe; use one per thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "pocketllm/common/http_reply.h"
#include "pocketllm/common/status.h"

namespace pocketllm::net {

struct ClientOptions {
  std::string url;            // "https://host:port" or "http://host:port" (a path part is ignored)
  std::string ca_file;        // PEM file of trusted CAs; empty: the system store
  std::string pinned_sha256;  // pins (cert_pins.h): "sha256/BASE64" key pins and/or hex certificate SHA-256s,
                              // comma-separated; a leaf matching one is trusted alone, chain and name not checked
  int connect_timeout_ms = 10000;
  int io_timeout_ms = 30000;  // for sending a request and for receiving its response
};

using HttpResult = HttpReply;

class HttpClient {
 public:
  static Result<std::unique_ptr<HttpClient>> create(const ClientOptions& options);
  ~HttpClient();

  // Sends one request, connecting (or reconnecting once, when a kept-alive connection was closed by
  // the server) as needed. A non-2xx status is a result, not an error; errors are network failures
  // (kIoError), timeouts (kIoError, "timed out") and certificate problems (kMismatch).
  Result<HttpResult> request(const std::string& method, const std::string& target, const std::string& body = "",
                             const std::string& bearer = "", const std::string& content_type = "application/json");
  void close();
  uint64_t bytes_sent() const;
  uint64_t bytes_received() const;

 private:
  struct Impl;
  explicit HttpClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Splits "https://host:port/path" into its parts; the port defaults to 443 / 80.
struct ParsedUrl {
  bool tls = true;
  std::string host;
  std::string port;
};
Result<ParsedUrl> parse_url(const std::string& url);

}  // namespace pocketllm::net
