// ggml block formats: dequantization against a per-element reading of the format description
// (docs/gguf.md, written independently of the block loops in quant.cpp), hand-computed quantizer
// outputs, and the quantizers' error bounds.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "pocketllm/common/quant.h"

using namespace pocketllm;

namespace {

float h(uint16_t v) { return f16_to_f32(v); }

// Element e of a Q4_K block, read from the description: 8 sub-blocks of 32; sub-block s = 2g + hi uses
// byte qs[32g + l] (low nibble for hi = 0, high for hi = 1); its 6-bit scale and min are unpacked from
// the 12 bytes as described (scales 0-3 / mins 0-3: low 6 bits of bytes 0-3 / 4-7; scales 4-7 / mins 4-7:
// low / high nibble of bytes 8-11, their top 2 bits in the top 2 bits of bytes 0-3 / 4-7).
void k4_scale_min(const uint8_t* scales, int s, int* sc, int* m) {
  if (s < 4) {
    *sc = scales[s] & 63;
    *m = scales[s + 4] & 63;
  } else {
    *sc = (scales[s + 4] & 15) | ((scales[s - 4] >> 6) << 4);
    *m = (scales[s + 4] >> 4) | ((scales[s] >> 6) << 4);
  }
}

float q4k_element(const BlockQ4_K& b, int e) {
  const int g = e / 64, hi = (e % 64) / 32, l = e % 32, s = 2 * g + hi;
  const int byte = b.qs[32 * g + l];
  const int q = hi ? byte >> 4 : byte & 15;
  int sc, m;
  k4_scale_min(b.scales, s, &sc, &m);
  const float d1 = h(b.d) * static_cast<float>(sc), m1 = h(b.dmin) * static_cast<float>(m);
  return d1 * static_cast<float>(q) - m1;
}

// Element e of a Q6_K block: halves of 128; in a half, quarter k of 32 takes its low 4 bits from
// ql[64n + l + 32(k % 2)] (low nibble for k < 2, high for k >= 2) and its high 2 bits from bits 2k..2k+1
// of qh[32n + l]; scale scales[8n + l/16 + 2k]; value d * scale * (q - 32).
float q6k_element(const BlockQ6_K& b, int e) {
  const int n = e / 128, r = e % 128, k = r / 32, l = r % 32;
  const int qlb = b.ql[64 * n + l + 32 * (k % 2)];
  const int low = k < 2 ? qlb & 15 : qlb >> 4;
  const int high = (b.qh[32 * n + l] >> (2 * k)) & 3;
  const int q = (low | (high << 4)) - 32;
  const int sc = b.scales[8 * n + l / 16 + 2 * k];
  return h(b.d) * static_cast<float>(sc) * static_cast<float>(q);
}

// Element e (< 32) of the 32-element legacy blocks, from the description: the nibble of qs[e mod 16] (low
// for e < 16); Q5_0 / Q5_1 add bit e of qh (a little-endian u32) as the fifth bit; Q4_1 and Q5_1 are
// q·d + m, Q5_0 (q − 16)·d.
int nibble(const uint8_t* qs, int e) { return e < 16 ? qs[e] & 15 : qs[e - 16] >> 4; }
int fifth_bit(const uint8_t* qh, int e) { return (qh[e / 8] >> (e % 8)) & 1; }
float q4_1_element(const BlockQ4_1& b, int e) { return static_cast<float>(nibble(b.qs, e)) * h(b.d) + h(b.m); }
float q5_0_element(const BlockQ5_0& b, int e) {
  return static_cast<float>((nibble(b.qs, e) | (fifth_bit(b.qh, e) << 4)) - 16) * h(b.d);
}
float q5_1_element(const BlockQ5_1& b, int e) {
  return static_cast<float>(nibble(b.qs, e) | (fifth_bit(b.qh, e) << 4)) * h(b.d) + h(b.m);
}

// Element e of a Q2_K block: half n = e / 128; in it, quarter j takes bits 2j..2j+1 of qs[32n + e mod 32];
// sub-block e / 16 has scale = low nibble and min = high nibble of scales[e / 16]; (d·scale)·q − (dmin·min).
float q2k_element(const BlockQ2_K& b, int e) {
  const int n = e / 128, j = (e % 128) / 32, l = e % 32;
  const int q = (b.qs[32 * n + l] >> (2 * j)) & 3;
  const int s = e / 16;
  const float dl = h(b.d) * static_cast<float>(b.scales[s] & 15), ml = h(b.dmin) * static_cast<float>(b.scales[s] >> 4);
  return dl * static_cast<float>(q) - ml;
}

// Element e of a Q3_K block: as Q2_K's layout for the low 2 bits; bit 4n + j of hmask[e mod 32] set
// means no −4; the 6-bit scale of sub-block s: its low 4 bits from the low (s < 8) or high nibble of
// scales[s mod 8], its top 2 bits from bits 2(s / 4) of scales[8 + s mod 4]; value (d·(scale − 32))·q.
float q3k_element(const BlockQ3_K& b, int e) {
  const int n = e / 128, j = (e % 128) / 32, l = e % 32, s = e / 16;
  const int low2 = (b.qs[32 * n + l] >> (2 * j)) & 3;
  const int q = low2 - (((b.hmask[l] >> (4 * n + j)) & 1) ? 0 : 4);
  const int scale = ((s < 8 ? b.scales[s] : b.scales[s - 8] >> 4) & 15) | (((b.scales[8 + s % 4] >> (2 * (s / 4))) & 3) << 4);
  return (h(b.d) * static_cast<float>(scale - 32)) * static_cast<float>(q);
}

// Element e of a Q5_K block: Q4_K's layout, scales and mins, plus bit s of qh[e mod 32] as the fifth bit
// (+16) of sub-block s.
float q5k_element(const BlockQ5_K& b, int e) {
  const int g = e / 64, hi = (e % 64) / 32, l = e % 32, s = 2 * g + hi;
  const int byte = b.qs[32 * g + l];
  const int q = (hi ? byte >> 4 : byte & 15) + (((b.qh[l] >> s) & 1) ? 16 : 0);
  int sc, m;
  k4_scale_min(b.scales, s, &sc, &m);
  return h(b.d) * static_cast<float>(sc) * static_cast<float>(q) - h(b.dmin) * static_cast<float>(m);
}

template <class Block>
std::vector<Block> random_blocks(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<Block> v(n);
  auto* bytes = reinterpret_cast<uint8_t*>(v.data());
  for (size_t i = 0; i < n * sizeof(Block); ++i) bytes[i] = static_cast<uint8_t>(rng());
  return v;
}

uint16_t finite_f16(std::mt19937& rng) {
  return f32_to_f16(std::uniform_real_distribution<float>(-0.05f, 0.05f)(rng));
}

}  // namespace

TEST_CASE("block dtypes have ggml's sizes and are not safetensors dtypes", "[common][quant]") {
  CHECK(dtype_block_size(DType::kQ8_0) == 32);
  CHECK(dtype_block_bytes(DType::kQ8_0) == 34);
  CHECK(dtype_bytes(DType::kQ4_0, 64) == 36);
  CHECK(dtype_bytes(DType::kQ4_K, 512) == 288);
  CHECK(dtype_bytes(DType::kQ6_K, 256) == 210);
  CHECK(dtype_bytes(DType::kF16, 3) == 6);
  CHECK(dtype_size(DType::kQ8_0) == 0);
  CHECK(dtype_is_quantized(DType::kQ6_K));
  CHECK_FALSE(dtype_is_quantized(DType::kBF16));
  DType t;
  CHECK_FALSE(parse_dtype("Q8_0", &t));
  CHECK(std::string(dtype_name(DType::kQ4_K)) == "Q4_K");
}

TEST_CASE("Q4_K and Q6_K dequantize as the format description reads, element by element", "[common][quant]") {
  std::mt19937 rng(7);
  auto k4 = random_blocks<BlockQ4_K>(16, 1);
  auto k6 = random_blocks<BlockQ6_K>(16, 2);
  for (auto& b : k4) {
    b.d = finite_f16(rng);
    b.dmin = finite_f16(rng);
  }
  for (auto& b : k6) b.d = finite_f16(rng);
  std::vector<float> out(16 * 256);
  dequantize(DType::kQ4_K, k4.data(), out.size(), out.data());
  size_t bad = 0;
  for (size_t i = 0; i < out.size(); ++i) bad += out[i] != q4k_element(k4[i / 256], static_cast<int>(i % 256));
  CHECK(bad == 0);
  dequantize(DType::kQ6_K, k6.data(), out.size(), out.data());
  bad = 0;
  for (size_t i = 0; i < out.size(); ++i) bad += out[i] != q6k_element(k6[i / 256], static_cast<int>(i % 256));
  CHECK(bad == 0);
}

// Random blocks of a type with finite f16 scales set by `fix`, dequantized whole against `element`.
template <class Block, class Fix, class Element>
size_t mismatches(DType t, uint32_t seed, Fix fix, Element element) {
  std::mt19937 rng(seed);
  auto blocks = random_blocks<Block>(24, seed);
  for (auto& b : blocks) fix(b, rng);
  const size_t per = dtype_block_size(t);
  std::vector<float> out(blocks.size() * per);
  dequantize(t, blocks.data(), out.size(), out.data());
  size_t bad = 0;
  for (size_t i = 0; i < out.size(); ++i) bad += out[i] != element(blocks[i / per], static_cast<int>(i % per));
  return bad;
}

TEST_CASE("Q4_1, Q5_0, Q5_1, Q2_K, Q3_K and Q5_K dequantize as the format description reads, element by element",
          "[common][quant]") {
  auto scale = [](auto& b, std::mt19937& rng) { b.d = finite_f16(rng); };
  auto scale_min = [](auto& b, std::mt19937& rng) {
    b.d = finite_f16(rng);
    b.m = finite_f16(rng);
  };
  auto scale_dmin = [](auto& b, std::mt19937& rng) {
    b.d = finite_f16(rng);
    b.dmin = finite_f16(rng);
  };
  CHECK(mismatches<BlockQ4_1>(DType::kQ4_1, 3, scale_min, q4_1_element) == 0);
  CHECK(mismatches<BlockQ5_0>(DType::kQ5_0, 4, scale, q5_0_element) == 0);
  CHECK(mismatches<BlockQ5_1>(DType::kQ5_1, 5, scale_min, q5_1_element) == 0);
  CHECK(mismatches<BlockQ2_K>(DType::kQ2_K, 6, scale_dmin, q2k_element) == 0);
  CHECK(mismatches<BlockQ3_K>(DType::kQ3_K, 7, scale, q3k_element) == 0);
  CHECK(mismatches<BlockQ5_K>(DType::kQ5_K, 8, scale_dmin, q5k_element) == 0);
  CHECK(dtype_bytes(DType::kQ3_K, 512) == 220);
  CHECK(std::string(dtype_name(DType::kQ5_K)) == "Q5_K");
}

TEST_CASE("Q3_K unpacks the 6-bit scales that were packed into its 12 bytes", "[common][quant]") {
  // 16 known scales packed as the description says, every quant 1 with its high bit set: element value
  // d * (scale - 32), exact in float for these small integers.
  const int sc[16] = {0, 1, 31, 32, 33, 63, 7, 48, 16, 62, 3, 40, 25, 50, 11, 60};
  BlockQ3_K b{};
  b.d = f32_to_f16(0.5f);
  for (int s = 0; s < 16; ++s) {
    b.scales[s % 8] |= static_cast<uint8_t>((sc[s] & 15) << (s < 8 ? 0 : 4));
    b.scales[8 + s % 4] |= static_cast<uint8_t>((sc[s] >> 4) << (2 * (s / 4)));
  }
  std::memset(b.qs, 0x55, sizeof b.qs);     // 01 in every 2-bit field
  std::memset(b.hmask, 0xFF, sizeof b.hmask);  // no -4 anywhere
  std::vector<float> out(256);
  dequantize(DType::kQ3_K, &b, 256, out.data());
  for (int s = 0; s < 16; ++s) {
    INFO("sub-block " << s);
    CHECK(out[16 * s] == 0.5f * static_cast<float>(sc[s] - 32));
    CHECK(out[16 * s + 15] == out[16 * s]);
  }
}

TEST_CASE("Q4_K unpacks the 6-bit scales and mins that were packed into its 12 bytes", "[common][quant]") {
  // Pack 8 known (scale, min) pairs as the description says, with 4-bit quants all 1: element value
  // d * scale - dmin * min, exact in float for these small integers.
  const int sc[8] = {1, 2, 63, 17, 40, 5, 33, 62}, mn[8] = {0, 9, 3, 63, 21, 60, 7, 34};
  BlockQ4_K b{};
  b.d = f32_to_f16(1.0f);
  b.dmin = f32_to_f16(0.5f);
  for (int j = 0; j < 4; ++j) {
    b.scales[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
    b.scales[j + 4] = static_cast<uint8_t>(mn[j] | ((mn[j + 4] >> 4) << 6));
    b.scales[j + 8] = static_cast<uint8_t>((sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4));
  }
  std::memset(b.qs, 0x11, sizeof b.qs);
  std::vector<float> out(256);
  dequantize(DType::kQ4_K, &b, 256, out.data());
  for (int s = 0; s < 8; ++s) {
    INFO("sub-block " << s);
    CHECK(out[32 * s] == static_cast<float>(sc[s]) - 0.5f * static_cast<float>(mn[s]));
    CHECK(out[32 * s + 31] == out[32 * s]);
  }
}

TEST_CASE("Q8_0 and Q4_0 dequantize as d * q and d * (q - 8)", "[common][quant]") {
  BlockQ8_0 b8{};
  b8.d = f32_to_f16(0.5f);
  for (int j = 0; j < 32; ++j) b8.qs[j] = static_cast<int8_t>(j * 8 - 128);
  BlockQ4_0 b4{};
  b4.d = f32_to_f16(-0.25f);
  for (int j = 0; j < 16; ++j) b4.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  float y8[32], y4[32];
  dequantize(DType::kQ8_0, &b8, 32, y8);
  dequantize(DType::kQ4_0, &b4, 32, y4);
  for (int j = 0; j < 32; ++j) CHECK(y8[j] == 0.5f * static_cast<float>(j * 8 - 128));
  for (int j = 0; j < 16; ++j) {
    CHECK(y4[j] == -0.25f * static_cast<float>(j - 8));
    CHECK(y4[j + 16] == -0.25f * static_cast<float>(15 - j - 8));
  }
}

TEST_CASE("the Q8_0 and Q4_0 quantizers round as ggml's reference does", "[common][quant]") {
  float x[32];
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j - 16);
  BlockQ8_0 b8;
  quantize_q8_0(x, 32, &b8);
  CHECK(f16_to_f32(b8.d) == f16_to_f32(f32_to_f16(16.0f / 127.0f)));
  CHECK(b8.qs[0] == -127);  // the largest magnitude maps to 127
  CHECK(b8.qs[16] == 0);
  CHECK(b8.qs[31] == 119);  // round(15 * 127 / 16) = round(119.06)
  CHECK(b8.qs[18] == 16);   // round(2 * 7.9375) = round(15.875)
  BlockQ4_0 b4;
  quantize_q4_0(x, 32, &b4);
  CHECK(f16_to_f32(b4.d) == 2.0f);  // the signed extreme -16 / -8
  CHECK((b4.qs[0] & 15) == 0);      // -16 * 0.5 + 8.5 = 0.5 -> 0
  CHECK((b4.qs[1] & 15) == 1);      // -15 * 0.5 + 8.5 = 1.0 -> 1
  CHECK((b4.qs[15] >> 4) == 15);    // x[31] = 15: 16.0 clamps to 15
  CHECK((b4.qs[0] >> 4) == 8);      // x[16] = 0 -> 8.5 -> 8
  // An all-zero block: d = 0, every quant the zero point.
  float zero[32] = {};
  quantize_q8_0(zero, 32, &b8);
  quantize_q4_0(zero, 32, &b4);
  CHECK(b8.d == 0);
  CHECK(b4.qs[3] == 0x88);
}

TEST_CASE("quantize then dequantize stays within half a step", "[common][quant]") {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 0.02f);
  std::vector<float> x(32 * 200), y(x.size());
  for (auto& v : x) v = nd(rng);
  for (DType t : {DType::kQ8_0, DType::kQ4_0}) {
    std::vector<uint8_t> q(dtype_bytes(t, x.size()));
    REQUIRE(quantize_checked(t, x.data(), x.size(), q.data()));
    dequantize(t, q.data(), x.size(), y.data());
    const float levels = t == DType::kQ8_0 ? 127.0f : 8.0f;
    double worst = 0;
    for (size_t b = 0; b < x.size() / 32; ++b) {
      float amax = 0;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
      const float step = amax / levels;
      for (int j = 0; j < 32; ++j) worst = std::max(worst, double(std::fabs(x[b * 32 + j] - y[b * 32 + j]) / step));
    }
    INFO(dtype_name(t) << " worst error in steps " << worst);
    // Q8_0: half a step plus the f16 rounding of the scale (127 * 2^-11 steps at most). Q4_0: its levels
    // are d * (-8 .. 7) with d = signed extreme / -8, so a value of the opposite sign near the extreme
    // clamps to 7d: up to one step.
    CHECK(worst <= (t == DType::kQ8_0 ? 0.5 + 127.0 / 2048 : 1.0 + 8.0 / 2048));
    CHECK(worst > 0.3);    // and not a quantizer that returned its input
  }
  x[77] = NAN;
  std::vector<uint8_t> q(dtype_bytes(DType::kQ8_0, x.size()));
  CHECK_FALSE(quantize_checked(DType::kQ8_0, x.data(), x.size(), q.data()));
}
