// Pin lists (net/cert_pins.h): key pins (sha256/BASE64 of the public key) and certificate pins (hex),
// comma-separated; malformed pins refused with the reason.
#include <catch2/catch.hpp>

#include "pocketllm/common/base64.h"
#include "pocketllm/common/sha256.h"
#include "pocketllm/net/cert_pins.h"

using namespace pocketllm;

TEST_CASE("pins: key and certificate pins parse, and a leaf matching any is accepted", "[net]") {
  const std::string spki = "a public key's DER", other_spki = "another key", cert = "a certificate's DER";
  const std::string kp = net::key_pin(spki);
  CHECK(kp.rfind("sha256/", 0) == 0);
  CHECK(kp.size() == 7 + 44);
  const Sha256Digest d = sha256(spki);
  CHECK(kp == "sha256/" + base64_encode(std::string(reinterpret_cast<const char*>(d.data()), d.size())));

  auto only_key = net::parse_pins(kp);
  REQUIRE(only_key.is_ok());
  CHECK(only_key->key.size() == 1);
  CHECK(only_key->accepts(cert, spki));
  CHECK(only_key->accepts("a renewed certificate's DER", spki));  // the key pin survives a renewal
  CHECK_FALSE(only_key->accepts(cert, other_spki));

  std::string upper = net::cert_pin(cert);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto only_cert = net::parse_pins(upper);  // hex in either case
  REQUIRE(only_cert.is_ok());
  CHECK(only_cert->accepts(cert, other_spki));
  CHECK_FALSE(only_cert->accepts("a renewed certificate's DER", spki));

  auto list = net::parse_pins(" " + net::key_pin(other_spki) + " ,  " + kp + ",\t" + net::cert_pin("x") + " ");
  REQUIRE(list.is_ok());
  CHECK(list->key.size() == 2);
  CHECK(list->cert.size() == 1);
  CHECK(list->accepts(cert, spki));        // the second key pin: a backup pin in front does not matter
  CHECK(list->accepts("x", "nothing"));    // the certificate pin
  CHECK_FALSE(list->accepts(cert, "nothing"));

  auto none = net::parse_pins("  ");
  REQUIRE(none.is_ok());
  CHECK(none->empty());
  CHECK_FALSE(none->accepts(cert, spki));
}

TEST_CASE("pins: malformed pins are refused, saying what a pin looks like", "[net]") {
  const std::string kp = net::key_pin("k");
  for (const std::string& bad : {kp + ",", "," + kp, kp + ",," + kp, std::string("sha256/"), "sha256/" + kp.substr(7, 43),
                                "sha256/" + kp.substr(7) + "AAAA", "sha1/" + kp.substr(7), kp.substr(7), std::string(63, 'a'),
                                std::string(65, 'a'), std::string(63, 'a') + "g", "sha256//" + kp.substr(7)}) {
    INFO(bad);
    auto r = net::parse_pins(bad);
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == StatusCode::kInvalidArgument);
    const std::string& m = r.status().message();
    CHECK((m.find("sha256/") != std::string::npos || m.find("empty pin") != std::string::npos));
  }
}
