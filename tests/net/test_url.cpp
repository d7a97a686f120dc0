// The device transport's URL parsing: scheme, host, port defaults, and refusals.
#include <catch2/catch.hpp>

#include "pocketllm/net/http_client.h"

using pocketllm::net::parse_url;

TEST_CASE("net: URLs split into scheme, host and port", "[tools]") {
  auto a = parse_url("https://example.org:8443/ignored/path");
  REQUIRE(a.is_ok());
  CHECK(a->tls);
  CHECK(a->host == "example.org");
  CHECK(a->port == "8443");
  auto b = parse_url("http://127.0.0.1");
  REQUIRE(b.is_ok());
  CHECK_FALSE(b->tls);
  CHECK(b->port == "80");
  CHECK(parse_url("https://h").value().port == "443");
  CHECK_FALSE(parse_url("ftp://h").is_ok());
  CHECK_FALSE(parse_url("https://").is_ok());
  CHECK_FALSE(parse_url("example.org:443").is_ok());
}
