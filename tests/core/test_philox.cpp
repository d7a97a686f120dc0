#include <catch2/catch.hpp>

#include "pocketllm/common/perturbation.h"
#include "pocketllm/common/philox.h"

using namespace pocketllm;

// Known answers published with Random123 (and repeated in docs/perturbation.md).
TEST_CASE("Philox4x32-10 reproduces the Random123 known-answer vectors", "[core][philox]") {
  CHECK(philox4x32_10({0, 0, 0, 0}, {0, 0}) == PhiloxBlock{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
  CHECK(philox4x32_10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}) ==
        PhiloxBlock{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd});
  CHECK(philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}) ==
        PhiloxBlock{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1});
}

TEST_CASE("FNV-1a-64 matches its published test values", "[core][fnv]") {
  // From the FNV reference test suite (Fowler/Noll/Vo): "" and "a" and "foobar".
  CHECK(fnv1a64("", 0) == 0xcbf29ce484222325ull);
  CHECK(fnv1a64("a", 1) == 0xaf63dc4c8601ec8cull);
  CHECK(fnv1a64("foobar", 6) == 0x85944171f73967e8ull);
  CHECK(tensor_tag("foobar") == 0x85944171f73967e8ull);
}

TEST_CASE("the seed's key is its low then high 32 bits", "[core][philox]") {
  CHECK(philox_key_from_seed(0x0123456789abcdefull) == PhiloxKey{0x89abcdef, 0x01234567});
}
