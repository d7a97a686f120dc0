// The HTTP request and response as the service sees them, independent of the network library, so the
// whole API can be tested in process and only http_server.cpp includes Boost.Beast.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace pocketllm::server {

struct HttpRequest {
  std::string method;         // "GET", "POST", …
  std::string target;         // path and query, as sent
  std::string authorization;  // the Authorization header, or empty
  std::string content_type;
  std::string body;
  std::string remote_address;  // the peer's IP address ("" in process: trusted like loopback)
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  // A large body shared between replies (snapshots): sent from here without a copy when set.
  std::shared_ptr<const std::string> shared_body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string route = "other";  // the matched route template, for metrics (never the raw path)
  bool authenticated = false;   // the request carried a valid credential (the front keeps such connections longer)
};

}  // namespace pocketllm::server
