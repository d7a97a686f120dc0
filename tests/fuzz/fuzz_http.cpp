// Raw bytes into the HTTP front: Beast's request parser with the server's limits, then the service,
// as a session does with what a socket delivered.
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdlib>

#include "fuzz_service.h"

namespace http = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto& s = pocketllm::fuzz::FuzzService::get();
  http::request_parser<http::string_body> parser;
  parser.header_limit(16 << 10);
  parser.body_limit(1 << 20);
  parser.eager(true);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(data, size), ec);
  if (ec || !parser.is_done()) return 0;
  auto& req = parser.get();
  pocketllm::server::HttpRequest r;
  r.method = std::string(req.method_string());
  r.target = std::string(req.target());
  r.authorization = std::string(req[http::field::authorization]);
  r.body = req.body();
  r.remote_address = "203.0.113.9";
  auto out = s.svc->handle(r);
  if (out.status < 100 || out.status > 599) std::abort();
  return 0;
}
