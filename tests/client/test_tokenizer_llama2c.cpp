#include <catch2/catch.hpp>

#include "test_paths.h"
#include "pocketllm/client/tokenizer.h"

using namespace pocketllm;

TEST_CASE("the llama2.c tokenizer round-trips text, including bytes outside its vocabulary", "[client][tokenizer]") {
  const std::string path = test::shared_dir() + "/hub/karpathy/llama2.c/tokenizer.bin";
  if (!test::path_exists(path)) {
    WARN("skipped: " << path << " not found");
    return;
  }
  auto tok = load_llama2c_tokenizer(path, 32000);
  REQUIRE(tok.is_ok());
  for (const std::string text : {"Hello world", "naïve café — 東京 🚀", "  two  spaces\nand a newline", "1234567890"}) {
    auto ids = tok.value()->encode(text, true, false);
    REQUIRE(ids.is_ok());
    CHECK(ids->front() == 1);
    CHECK(tok.value()->decode(ids.value()) == text);
  }
  // Known ids of the Llama-2 vocabulary: "Hello" is 15043 (with its leading space piece), " world" 3186.
  auto hello = tok.value()->encode("Hello world", true, false);
  CHECK(hello.value() == std::vector<int32_t>{1, 15043, 3186});
}
