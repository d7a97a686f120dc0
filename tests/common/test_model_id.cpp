#include <catch2/catch.hpp>

#include "pocketllm/common/model_id.h"
#include "pocketllm/common/sha256.h"
#include "pocketllm/common/sha256_portable.h"

#include <algorithm>

using namespace pocketllm;

TEST_CASE("SHA-256 matches the FIPS 180-2 test vectors", "[common][hash]") {
  CHECK(to_hex(sha256("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(to_hex(sha256("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("the model id depends on names, dtypes, shapes and bytes but not on order", "[common][hash]") {
  float a[4] = {1, 2, 3, 4};
  float b[2] = {5, 6};
  const std::string id = compute_model_id({{"x.weight", DType::kF32, {2, 2}, a}, {"y.bias", DType::kF32, {2}, b}});
  CHECK(id.size() == 64);
  CHECK(compute_model_id({{"y.bias", DType::kF32, {2}, b}, {"x.weight", DType::kF32, {2, 2}, a}}) == id);
  CHECK(compute_model_id({{"x.weight", DType::kF32, {4}, a}, {"y.bias", DType::kF32, {2}, b}}) != id);
  CHECK(compute_model_id({{"x.weight", DType::kF32, {2, 2}, a}, {"y.bias2", DType::kF32, {2}, b}}) != id);
  CHECK(compute_model_id({{"x.weight", DType::kI32, {2, 2}, a}, {"y.bias", DType::kF32, {2}, b}}) != id);
  float a2[4] = {1, 2, 3, 4.0000005f};
  CHECK(compute_model_id({{"x.weight", DType::kF32, {2, 2}, a2}, {"y.bias", DType::kF32, {2}, b}}) != id);
}

TEST_CASE("the built-in SHA-256 (mobile build) matches FIPS 180-2 and the build's Sha256 on every length", "[common][hash]") {
  auto portable = [](std::string_view s) {
    PortableSha256 h;
    h.update(s.data(), s.size());
    const auto d = h.finish();
    return to_hex(d.data(), d.size());
  };
  CHECK(portable("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(portable("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(portable("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(portable(std::string(1000000, 'a')) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // Every length across block boundaries, fed in uneven pieces, against the build's Sha256.
  std::string text;
  for (int n = 0; n < 300; ++n) {
    PortableSha256 pieces;
    for (size_t i = 0; i < text.size(); i += 7) pieces.update(text.data() + i, std::min<size_t>(7, text.size() - i));
    const auto d = pieces.finish();
    REQUIRE(to_hex(d.data(), d.size()) == to_hex(sha256(text)));
    text.push_back(static_cast<char>('a' + (n * 31) % 26));
  }
}
