// The GGUF container: a round trip through the writer, and every malformed case the reader must refuse
// with a clear error (built byte by byte here, independently of the writer).
#include <catch2/catch.hpp>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "test_env.h"
#include "test_paths.h"
#include "pocketllm/common/gguf.h"

using namespace pocketllm;

namespace {

// A GGUF image assembled field by field.
struct Bytes {
  std::string b;
  template <class T>
  Bytes& put(T v) {
    b.append(reinterpret_cast<const char*>(&v), sizeof v);
    return *this;
  }
  Bytes& str(const std::string& s) {
    put<uint64_t>(s.size());
    b += s;
    return *this;
  }
  Bytes& header(uint64_t tensors, uint64_t kvs, uint32_t version = 3) {
    return put<uint32_t>(gguf::kMagic).put<uint32_t>(version).put<uint64_t>(tensors).put<uint64_t>(kvs);
  }
  Bytes& kv_u32(const std::string& k, uint32_t v) { return str(k).put<uint32_t>(4).put<uint32_t>(v); }
  Bytes& kv_str(const std::string& k, const std::string& v) { return str(k).put<uint32_t>(8).str(v); }
  // A tensor info; dims innermost first.
  Bytes& tensor(const std::string& name, std::vector<uint64_t> dims, uint32_t type, uint64_t offset) {
    str(name).put<uint32_t>(static_cast<uint32_t>(dims.size()));
    for (uint64_t d : dims) put<uint64_t>(d);
    return put<uint32_t>(type).put<uint64_t>(offset);
  }
  Bytes& pad(size_t align) {
    while (b.size() % align) b.push_back('\0');
    return *this;
  }
  Bytes& data(size_t n, char fill = 0) {
    b.append(n, fill);
    return *this;
  }
};

Result<gguf::File> parse(const Bytes& x) {
  auto copy = std::make_shared<std::string>(x.b);
  return gguf::File::parse(reinterpret_cast<const uint8_t*>(copy->data()), copy->size(), "test.gguf", copy);
}

void expect_error(const Bytes& x, StatusCode code, const std::string& fragment) {
  auto f = parse(x);
  REQUIRE_FALSE(f.is_ok());
  INFO(f.status().to_string());
  CHECK(f.status().code() == code);
  CHECK(f.status().message().find(fragment) != std::string::npos);
  CHECK(f.status().message().find("test.gguf") != std::string::npos);
}

// A valid one-tensor file: a 32 x 2 F32 matrix.
Bytes valid_file() {
  Bytes x;
  x.header(1, 1).kv_str("general.architecture", "llama").tensor("w", {32, 2}, 0, 0).pad(32).data(32 * 2 * 4, 1);
  return x;
}

}  // namespace

TEST_CASE("a hand-built GGUF file parses with its metadata and tensor", "[common][gguf]") {
  auto f = parse(valid_file());
  REQUIRE(f.is_ok());
  CHECK(f->version() == 3);
  CHECK(f->get_string("general.architecture").value() == "llama");
  const gguf::TensorInfo* t = f->tensor("w");
  REQUIRE(t != nullptr);
  CHECK(t->dims == std::vector<uint64_t>{32, 2});
  CHECK(t->dtype == DType::kF32);
  CHECK(t->nbytes == 256);
  CHECK(t->data[0] == 1);
  // Version 2 has the same layout.
  Bytes v2;
  v2.header(0, 1, 2).kv_u32("a", 7);
  REQUIRE(parse(v2).is_ok());
  CHECK(parse(v2)->get_uint("a").value() == 7);
}

TEST_CASE("the GGUF writer's file reads back: every value type, tensors at the alignment", "[common][gguf]") {
  const std::string dir = server::test::temp_dir("gguf");
  gguf::Writer w;
  w.set_u32("u32", 4000000000u);
  w.set_i32("i32", -5);
  w.set_u64("u64", uint64_t{1} << 40);
  w.set_f32("f32", 0.25f);
  w.set_bool("yes", true);
  w.set_string("s", "h\xC3\xA9llo");
  w.set_string_array("sa", {"a", "", "\xE2\x96\x81x"});
  w.set_f32_array("fa", {1.5f, -2.0f});
  w.set_i32_array("ia", {3, -4, 5});
  std::vector<float> values(64 * 3);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i) * 0.5f - 7.0f;
  REQUIRE(w.add_tensor("m", {64, 3}, DType::kF32, [&](uint8_t* out) {
    std::memcpy(out, values.data(), values.size() * 4);
    return Status::ok();
  }).is_ok());
  REQUIRE(w.add_tensor("v", {5}, DType::kF16, [](uint8_t* out) {
    for (int i = 0; i < 5; ++i) {
      const uint16_t h = f32_to_f16(static_cast<float>(i));
      std::memcpy(out + 2 * i, &h, 2);
    }
    return Status::ok();
  }).is_ok());
  CHECK_FALSE(w.add_tensor("m", {64}, DType::kF32, [](uint8_t*) { return Status::ok(); }).is_ok());  // twice
  CHECK_FALSE(w.add_tensor("q", {33, 2}, DType::kQ8_0, [](uint8_t*) { return Status::ok(); }).is_ok());  // not whole blocks
  for (uint32_t align : {32u, 64u}) {
    const std::string path = dir + "/t" + std::to_string(align) + ".gguf";
    REQUIRE(w.write(path, align).is_ok());
    auto f = gguf::File::open(path);
    REQUIRE(f.is_ok());
    CHECK(f->alignment() == align);
    CHECK(f->get_uint("u32").value() == 4000000000u);
    CHECK(f->find("i32")->i == -5);
    CHECK_FALSE(f->get_uint("i32").is_ok());  // negative
    CHECK(f->get_uint("u64").value() == (uint64_t{1} << 40));
    CHECK(f->get_float("f32").value() == 0.25);
    CHECK(f->get_bool("yes").value());
    CHECK(f->get_string("s").value() == "h\xC3\xA9llo");
    const auto sa = f->get_string_array("sa").value();
    REQUIRE(sa.size() == 3);
    CHECK(sa[2] == "\xE2\x96\x81x");
    CHECK(f->get_float_array("fa").value() == std::vector<float>{1.5f, -2.0f});
    CHECK(f->get_int_array("ia").value() == std::vector<int64_t>{3, -4, 5});
    CHECK_FALSE(f->get_string("u32").is_ok());  // wrong type: an error, not a value
    CHECK(f->get_string("missing").status().code() == StatusCode::kNotFound);
    const gguf::TensorInfo* m = f->tensor("m");
    const gguf::TensorInfo* v = f->tensor("v");
    REQUIRE((m && v));
    CHECK(m->offset % align == 0);
    CHECK(v->offset % align == 0);
    CHECK(std::memcmp(m->data, values.data(), values.size() * 4) == 0);
    uint16_t h4;
    std::memcpy(&h4, v->data + 8, 2);
    CHECK(f16_to_f32(h4) == 4.0f);
  }
  // A failing fill leaves no file behind.
  gguf::Writer bad;
  REQUIRE(bad.add_tensor("x", {4}, DType::kF32, [](uint8_t*) { return corrupt("no data"); }).is_ok());
  const Status s = bad.write(dir + "/bad.gguf");
  CHECK(s.message().find("'x'") != std::string::npos);
  CHECK_FALSE(test::path_exists(dir + "/bad.gguf"));
}

TEST_CASE("malformed GGUF headers are refused with a clear error", "[common][gguf][malformed]") {
  SECTION("bad magic") {
    Bytes x = valid_file();
    x.b[0] = 'X';
    expect_error(x, StatusCode::kCorrupt, "magic");
  }
  SECTION("truncated header") {
    Bytes x;
    x.put<uint32_t>(gguf::kMagic).put<uint32_t>(3).put<uint32_t>(0);
    expect_error(x, StatusCode::kCorrupt, "truncated");
  }
  SECTION("empty file") { expect_error(Bytes{}, StatusCode::kCorrupt, "magic"); }
  SECTION("version 1 and unknown versions") {
    Bytes v1;
    v1.header(0, 0, 1);
    expect_error(v1, StatusCode::kUnsupported, "version 1");
    Bytes v9;
    v9.header(0, 0, 9);
    expect_error(v9, StatusCode::kUnsupported, "version 9");
  }
  SECTION("counts larger than the file") {
    Bytes kv;
    kv.header(0, uint64_t{1} << 62);
    expect_error(kv, StatusCode::kCorrupt, "metadata entries");
    Bytes t;
    t.header(uint64_t{1} << 60, 0);
    expect_error(t, StatusCode::kCorrupt, "tensors");
  }
}

TEST_CASE("malformed GGUF metadata is refused with a clear error", "[common][gguf][malformed]") {
  SECTION("a string length beyond the file") {
    Bytes x;
    x.header(0, 1).put<uint64_t>(uint64_t{1} << 40).data(8);
    expect_error(x, StatusCode::kCorrupt, "metadata key 0");
  }
  SECTION("a value string beyond the file") {
    Bytes x;
    x.header(0, 1).str("k").put<uint32_t>(8).put<uint64_t>(1000).data(3);
    expect_error(x, StatusCode::kCorrupt, "'k'");
  }
  SECTION("unknown value type") {
    Bytes x;
    x.header(0, 1).str("k").put<uint32_t>(13).data(8);
    expect_error(x, StatusCode::kCorrupt, "unknown value type 13");
  }
  SECTION("unknown array element type") {
    Bytes x;
    x.header(0, 1).str("k").put<uint32_t>(9).put<uint32_t>(77).put<uint64_t>(1).data(8);
    expect_error(x, StatusCode::kCorrupt, "unknown element type 77");
  }
  SECTION("array count beyond the file") {
    Bytes x;
    x.header(0, 1).str("k").put<uint32_t>(9).put<uint32_t>(4).put<uint64_t>(uint64_t{1} << 61).data(16);
    expect_error(x, StatusCode::kCorrupt, "runs past the end");
    Bytes s;
    s.header(0, 1).str("k").put<uint32_t>(9).put<uint32_t>(8).put<uint64_t>(uint64_t{1} << 40).data(16);
    expect_error(s, StatusCode::kCorrupt, "strings");
  }
  SECTION("array of arrays") {
    Bytes x;
    x.header(0, 1).str("k").put<uint32_t>(9).put<uint32_t>(9).put<uint64_t>(1).data(16);
    expect_error(x, StatusCode::kUnsupported, "array of arrays");
  }
  SECTION("a bool that is neither 0 nor 1") {
    Bytes x;
    x.header(0, 1).str("k").put<uint32_t>(7).put<uint8_t>(2);
    expect_error(x, StatusCode::kCorrupt, "bool");
  }
  SECTION("duplicate key") {
    Bytes x;
    x.header(0, 2).kv_u32("k", 1).kv_u32("k", 2);
    expect_error(x, StatusCode::kCorrupt, "appears twice");
  }
  SECTION("empty key") {
    Bytes x;
    x.header(0, 1).kv_u32("", 1);
    expect_error(x, StatusCode::kCorrupt, "empty");
  }
  SECTION("alignment that is not a power of two, or not an integer") {
    Bytes x;
    x.header(0, 1).kv_u32("general.alignment", 24);
    expect_error(x, StatusCode::kCorrupt, "general.alignment");
    Bytes z;
    z.header(0, 1).kv_u32("general.alignment", 0);
    expect_error(z, StatusCode::kCorrupt, "general.alignment");
    Bytes s;
    s.header(0, 1).kv_str("general.alignment", "32");
    expect_error(s, StatusCode::kCorrupt, "general.alignment");
  }
}

TEST_CASE("malformed GGUF tensor infos are refused with a clear error", "[common][gguf][malformed]") {
  auto one = [](std::vector<uint64_t> dims, uint32_t type, uint64_t offset, size_t data) {
    Bytes x;
    x.header(1, 0).tensor("t", std::move(dims), type, offset).pad(32).data(data);
    return x;
  };
  SECTION("dimension count 0 or 5") {
    expect_error(one({}, 0, 0, 64), StatusCode::kCorrupt, "0 dimensions");
    expect_error(one({1, 1, 1, 1, 1}, 0, 0, 64), StatusCode::kCorrupt, "5 dimensions");
  }
  SECTION("a zero dimension") { expect_error(one({32, 0}, 0, 0, 64), StatusCode::kCorrupt, "dimension 0"); }
  SECTION("dimensions whose product overflows") {
    expect_error(one({uint64_t{1} << 40, uint64_t{1} << 40}, 0, 0, 64), StatusCode::kCorrupt, "overflow");
  }
  SECTION("unknown ggml type") { expect_error(one({32}, 99, 0, 128), StatusCode::kCorrupt, "unknown ggml type 99"); }
  SECTION("a ggml type pocketllm does not read") { expect_error(one({256}, 20, 0, 4096), StatusCode::kUnsupported, "IQ4_NL"); }
  SECTION("rows that are not whole blocks") { expect_error(one({48, 2}, 8, 0, 4096), StatusCode::kCorrupt, "blocks"); }
  SECTION("misaligned offset") {
    Bytes x;
    x.header(2, 0).tensor("a", {8}, 0, 0).tensor("b", {8}, 0, 33).pad(32).data(128);
    expect_error(x, StatusCode::kCorrupt, "alignment");
  }
  SECTION("data beyond the end of the file") {
    expect_error(one({32, 2}, 0, 0, 255), StatusCode::kCorrupt, "past the end");
    expect_error(one({32}, 0, uint64_t{1} << 63, 4096), StatusCode::kCorrupt, "past the end");
  }
  SECTION("duplicate tensor name") {
    Bytes x;
    x.header(2, 0).tensor("a", {8}, 0, 0).tensor("a", {8}, 0, 32).pad(32).data(64);
    expect_error(x, StatusCode::kCorrupt, "appears twice");
  }
  SECTION("a tensor name beyond the file") {
    Bytes x;
    x.header(1, 0).put<uint64_t>(uint64_t{1} << 50).data(40);
    expect_error(x, StatusCode::kCorrupt, "tensor info 0 name");
  }
  SECTION("a truncated copy of a valid file is refused at every length") {
    const Bytes full = valid_file();
    for (size_t n = 0; n < full.b.size(); ++n) {
      Bytes cut;
      cut.b = full.b.substr(0, n);
      INFO("length " << n);
      CHECK_FALSE(parse(cut).is_ok());
    }
  }
}
