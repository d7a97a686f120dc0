#include <catch2/catch.hpp>

#include "pocketllm/common/model_id.h"
#include "pocketllm/common/sha256.h"

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
