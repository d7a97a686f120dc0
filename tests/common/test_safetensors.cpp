#include <catch2/catch.hpp>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <unistd.h>

#include "pocketllm/common/file_util.h"
#include "pocketllm/common/safetensors.h"

using namespace pocketllm;

namespace {

// A file built by hand from the format's definition: u64 LE header length, JSON header, data.
std::string build(const std::string& header, const std::string& data, uint64_t declared_len = UINT64_MAX) {
  const uint64_t n = declared_len == UINT64_MAX ? header.size() : declared_len;
  std::string out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  return out + header + data;
}

Status parse(const std::string& bytes) { return SafetensorsFile::from_bytes(bytes, "test.safetensors").status(); }

void expect_corrupt(const std::string& bytes, const std::string& needle) {
  const Status s = parse(bytes);
  INFO("status: " << s.to_string());
  CHECK(s.code() == StatusCode::kCorrupt);
  CHECK(s.message().find("test.safetensors") != std::string::npos);
  CHECK(s.message().find(needle) != std::string::npos);
}

std::string temp_path(const std::string& name) {
  return "/tmp/pocketllm_test_" + std::to_string(::getpid()) + "_" + name;
}

}  // namespace

TEST_CASE("a hand-built safetensors file is read as the format defines", "[common][safetensors]") {
  const float a[3] = {1.5f, -2.0f, 3.25f};
  const uint16_t b[2] = {0x3f80, 0xc000};  // bf16 1.0, -2.0
  std::string data(reinterpret_cast<const char*>(a), 12);
  data.append(reinterpret_cast<const char*>(b), 4);
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},)"
      R"("b":{"dtype":"BF16","shape":[1,2],"data_offsets":[12,16]}})";
  auto f = SafetensorsFile::from_bytes(build(header, data), "x");
  REQUIRE(f.is_ok());
  REQUIRE(f->tensors().size() == 2);
  CHECK(f->metadata().at("format") == "pt");
  const TensorInfo* tb = f->find("b");
  REQUIRE(tb != nullptr);
  CHECK(tb->shape == std::vector<int64_t>{1, 2});
  CHECK(tb->numel == 2);
  float out[2];
  REQUIRE(f->read_f32(*tb, 0, 2, out).is_ok());
  CHECK(out[0] == 1.0f);
  CHECK(out[1] == -2.0f);
  float a_out[2];
  REQUIRE(f->read_f32(*f->find("a"), 1, 2, a_out).is_ok());
  CHECK(a_out[0] == -2.0f);
  CHECK(a_out[1] == 3.25f);
  CHECK(f->read_f32(*tb, 1, 2, out).code() == StatusCode::kOutOfRange);
  CHECK(f->find("c") == nullptr);
}

TEST_CASE("the writer's files read back with every dtype, zero-copy for aligned F32", "[common][safetensors]") {
  std::vector<float> w(1000);
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i) * 0.5f - 7.0f;
  std::vector<uint16_t> h(6);
  for (size_t i = 0; i < h.size(); ++i) h[i] = f32_to_f16(static_cast<float>(i));
  const std::string path = temp_path("w.safetensors");
  REQUIRE(write_safetensors(path,
                            {{"model.w", DType::kF32, {10, 100}, w.data()},
                             {"model.h", DType::kF16, {2, 3}, h.data()},
                             {"empty", DType::kF32, {0, 4}, nullptr}},
                            {{"pocketllm", "test"}})
              .is_ok());
  CHECK(::access((path + ".tmp." + std::to_string(::getpid())).c_str(), F_OK) != 0);
  auto f = SafetensorsFile::open(path);
  REQUIRE(f.is_ok());
  const TensorInfo* tw = f->find("model.w");
  REQUIRE(tw != nullptr);
  const float* view = f->f32_view(*tw);
  REQUIRE(view != nullptr);
  CHECK(std::memcmp(view, w.data(), w.size() * 4) == 0);
  float hv[6];
  REQUIRE(f->read_f32(*f->find("model.h"), 0, 6, hv).is_ok());
  CHECK(hv[5] == 5.0f);
  CHECK(f->find("empty")->numel == 0);
  CHECK(f->metadata().at("pocketllm") == "test");
  std::remove(path.c_str());
}

TEST_CASE("every kind of malformed safetensors file is a clear error", "[common][safetensors]") {
  const std::string data(16, '\0');
  const std::string ok = R"({"t":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";
  REQUIRE(parse(build(ok, data)).is_ok());

  SECTION("truncated") {
    const std::string full = build(ok, data);
    expect_corrupt(full.substr(0, 5), "too short");
    expect_corrupt(full.substr(0, 8 + ok.size() / 2), "past the end");
    expect_corrupt(full.substr(0, full.size() - 1), "past the end of the data");
  }
  SECTION("header length") {
    expect_corrupt(build(ok, data, uint64_t{1} << 62), "exceeds");
    expect_corrupt(build(ok, data, 1000), "past the end");
    expect_corrupt(build("", ""), "not a JSON object");
  }
  SECTION("JSON") {
    expect_corrupt(build(R"({"t":{"dtype":"F32",)", data), "not valid JSON");
    expect_corrupt(build(R"([1,2,3])", data), "not a JSON object");
    expect_corrupt(build(R"({"t":5})", data), "'t' is not an object");
    expect_corrupt(build(R"({"t":{"dtype":"F32","shape":[4]}})", data), "data_offsets");
    expect_corrupt(build(R"({"t":{"shape":[4],"data_offsets":[0,16]}})", data), "dtype");
    expect_corrupt(build(R"({"t":{"dtype":"F32","shape":[4],"data_offsets":[0,16],"x":1}})", data), "unknown field");
    expect_corrupt(build(R"({"__metadata__":{"a":1},"t":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", data),
                   "__metadata__");
  }
  SECTION("dtype and shape") {
    expect_corrupt(build(R"({"t":{"dtype":"Q4","shape":[4],"data_offsets":[0,16]}})", data), "unknown dtype 'Q4'");
    expect_corrupt(build(R"({"t":{"dtype":"F32","shape":[5],"data_offsets":[0,16]}})", data), "need 20 bytes");
    expect_corrupt(build(R"({"t":{"dtype":"F16","shape":[4],"data_offsets":[0,16]}})", data), "need 8 bytes");
    expect_corrupt(build(R"({"t":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})", data), "non-negative");
    expect_corrupt(build(R"({"t":{"dtype":"F32","shape":[2.5],"data_offsets":[0,16]}})", data), "non-negative");
    expect_corrupt(build(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,16]}})", data),
                   "too large");
  }
  SECTION("offsets") {
    expect_corrupt(build(R"({"t":{"dtype":"F32","shape":[4],"data_offsets":[16,0]}})", data), "begin 16 > end 0");
    expect_corrupt(build(R"({"t":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})", data), "past the end");
    expect_corrupt(build(R"({"t":{"dtype":"F32","shape":[4],"data_offsets":[-1,15]}})", data), "not non-negative");
    expect_corrupt(build(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},)"
                         R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                         data),
                   "overlap");
  }
  SECTION("duplicate names") {
    expect_corrupt(build(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                         R"("t":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                         data),
                   "'t' appears twice");
  }
}

TEST_CASE("random corruption of a valid file never crashes the reader", "[common][safetensors]") {
  std::vector<float> w(64, 1.0f);
  auto bytes = serialize_safetensors({{"a", DType::kF32, {8, 8}, w.data()}, {"b", DType::kF32, {0}, nullptr}});
  REQUIRE(bytes.is_ok());
  std::mt19937 rng(std::random_device{}());
  size_t rejected = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string m = bytes.value();
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t at = rng() % std::min<size_t>(m.size(), 8 + 120);  // mostly the header
      m[at] = static_cast<char>(rng());
    }
    if (rng() % 4 == 0) m.resize(rng() % m.size());
    auto f = SafetensorsFile::from_bytes(m, "fuzz");
    if (!f.is_ok()) {
      ++rejected;
      continue;
    }
    // Whatever it accepted must be readable inside the buffer.
    for (const auto& t : f->tensors()) {
      REQUIRE(t.file_offset + t.nbytes <= m.size());
      std::vector<float> out(t.numel);
      if (dtype_is_float_weights(t.dtype)) REQUIRE(f->read_f32(t, 0, t.numel, out.data()).is_ok());
    }
  }
  CHECK(rejected > 1000);
}

TEST_CASE("opening a missing file names it", "[common][safetensors]") {
  auto f = SafetensorsFile::open("/nonexistent/model.safetensors");
  CHECK(f.status().code() == StatusCode::kNotFound);
  CHECK(f.status().message().find("/nonexistent/model.safetensors") != std::string::npos);
}
