#include <catch2/catch.hpp>

#include <cstdio>
#include <map>
#include <random>

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

namespace {

// run.c's encode written out plainly (O(n^2) rescans), read from tokenizer.bin on its own: the
// reference the engine's heap-based merge must equal token for token.
std::vector<int32_t> reference_encode(const std::string& tokenizer_bin, int vocab, const std::string& text) {
  std::FILE* f = std::fopen(tokenizer_bin.c_str(), "rb");
  REQUIRE(f != nullptr);
  int max_len = 0;
  REQUIRE(std::fread(&max_len, 4, 1, f) == 1);
  std::vector<std::string> pieces(static_cast<size_t>(vocab));
  std::vector<float> scores(static_cast<size_t>(vocab));
  std::map<std::string, int32_t> lookup;
  for (int i = 0; i < vocab; ++i) {
    int len = 0;
    REQUIRE(std::fread(&scores[i], 4, 1, f) == 1);
    REQUIRE(std::fread(&len, 4, 1, f) == 1);
    pieces[i].resize(static_cast<size_t>(len));
    REQUIRE(std::fread(&pieces[i][0], 1, static_cast<size_t>(len), f) == static_cast<size_t>(len));
    lookup.emplace(pieces[i], i);
  }
  std::fclose(f);
  std::vector<int32_t> ids = {1};
  if (!text.empty()) ids.push_back(lookup.at(" "));
  for (size_t i = 0; i < text.size();) {
    size_t len = 1;
    while (i + len < text.size() && len < 4 && (static_cast<unsigned char>(text[i + len]) & 0xC0) == 0x80) ++len;
    auto it = lookup.find(text.substr(i, len));
    if (it != lookup.end()) {
      ids.push_back(it->second);
    } else {
      for (size_t b = i; b < i + len; ++b) ids.push_back(static_cast<unsigned char>(text[b]) + 3);
    }
    i += len;
  }
  for (;;) {
    float best = -1e10f;
    int32_t best_id = -1;
    size_t best_at = 0;
    for (size_t k = 1; k + 1 < ids.size(); ++k) {
      auto it = lookup.find(pieces[ids[k]] + pieces[ids[k + 1]]);
      if (it != lookup.end() && scores[it->second] > best) {
        best = scores[it->second];
        best_id = it->second;
        best_at = k;
      }
    }
    if (best_id < 0) break;
    ids[best_at] = best_id;
    ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(best_at) + 1);
  }
  return ids;
}

}  // namespace

TEST_CASE("the heap-based BPE merge equals run.c's rescanning merge on random and repetitive text", "[client][tokenizer]") {
  const std::string path = test::shared_dir() + "/hub/karpathy/tinyllamas/stories260K/tok512.bin";
  if (!test::path_exists(path)) {
    WARN("skipped: " << path << " not found");
    return;
  }
  auto tok = load_llama2c_tokenizer(path, 512);
  REQUIRE(tok.is_ok());
  std::mt19937 rng(7);
  const std::string alphabet = "abcdeehinorst  ,.!TOwl\n";
  std::vector<std::string> texts = {"Once upon a time, there was a little girl named Lily.", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                                    "the the the the the the the", "é ü 🚀 x"};
  for (int n = 0; n < 200; ++n) {
    std::string t;
    const int len = static_cast<int>(rng() % 120);
    for (int i = 0; i < len; ++i) t += alphabet[rng() % alphabet.size()];
    texts.push_back(t);
  }
  for (const std::string& t : texts) {
    auto ids = tok.value()->encode(t, true, false);
    REQUIRE(ids.is_ok());
    REQUIRE(ids.value() == reference_encode(path, 512, t));
  }
}
