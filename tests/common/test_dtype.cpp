#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <vector>
#include <limits>

#include "pocketllm/common/dtype.h"

using namespace pocketllm;

TEST_CASE("half-precision conversions agree with their definitions", "[common][dtype]") {
  // Known encodings (IEEE 754 binary16 and bfloat16 tables).
  CHECK(f16_to_f32(0x3c00) == 1.0f);
  CHECK(f16_to_f32(0xc000) == -2.0f);
  CHECK(f16_to_f32(0x7bff) == 65504.0f);
  CHECK(f16_to_f32(0x0001) == std::ldexp(1.0f, -24));  // smallest subnormal
  CHECK(f16_to_f32(0x03ff) == std::ldexp(1023.0f, -24));
  CHECK(std::isinf(f16_to_f32(0x7c00)));
  CHECK(std::isnan(f16_to_f32(0x7e00)));
  CHECK(bf16_to_f32(0x3f80) == 1.0f);
  CHECK(bf16_to_f32(0xc2f7) == -123.5f);

  // Every f16 value converts to f32 and back unchanged (NaNs stay NaN).
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      CHECK(std::isnan(f16_to_f32(f32_to_f16(f))));
      continue;
    }
    if (f32_to_f16(f) != h) FAIL("f16 round trip failed for 0x" << std::hex << h);
  }
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const float f = bf16_to_f32(static_cast<uint16_t>(b));
    if (!std::isnan(f) && f32_to_bf16(f) != b) FAIL("bf16 round trip failed for 0x" << std::hex << b);
  }
  // The bulk conversion (vectorised where the CPU has F16C/AVX2) gives the scalar conversion's bits for
  // every value, at every position of a vector and its scalar tail.
  std::vector<uint16_t> all(0x10000 + 5);
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint16_t>(i * 40503u);
  std::vector<float> bulk(all.size());
  for (DType t : {DType::kF16, DType::kBF16}) {
    REQUIRE(convert_to_f32(t, all.data(), all.size(), bulk.data()));
    size_t bad = 0;
    for (size_t i = 0; i < all.size(); ++i) {
      const float one = t == DType::kF16 ? f16_to_f32(all[i]) : bf16_to_f32(all[i]);
      uint32_t a, b;
      std::memcpy(&a, &one, 4);
      std::memcpy(&b, &bulk[i], 4);
      bad += a != b && !(std::isnan(one) && std::isnan(bulk[i]));
    }
    CHECK(bad == 0);
  }
  // Round to nearest even at the halfway point.
  CHECK(f32_to_bf16(bf16_to_f32(0x3f80) + std::ldexp(1.0f, -8)) == 0x3f80);  // halfway, even stays
  CHECK(f32_to_bf16(bf16_to_f32(0x3f81) + std::ldexp(1.0f, -8)) == 0x3f82);  // halfway, odd rounds up
  CHECK(f32_to_f16(70000.0f) == 0x7c00);
  CHECK(f32_to_f16(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);  // halfway to the next f16, even
}

TEST_CASE("dtype names parse and have sizes", "[common][dtype]") {
  DType t;
  REQUIRE(parse_dtype("BF16", &t));
  CHECK(t == DType::kBF16);
  CHECK(dtype_size(t) == 2);
  CHECK(std::string(dtype_name(DType::kF8E4M3)) == "F8_E4M3");
  CHECK_FALSE(parse_dtype("f32", &t));
  CHECK_FALSE(parse_dtype("Q4_0", &t));  // block types are not safetensors dtypes
}
