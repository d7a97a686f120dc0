#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_paths.h"
#include "model_fixtures.h"
#include "pocketllm/client/tokenizer.h"

using namespace pocketllm;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> lines_of(const std::string& path) {
  std::vector<std::string> out;
  std::stringstream ss(slurp(path));
  std::string line;
  while (std::getline(ss, line)) out.push_back(line);
  return out;
}

}  // namespace

TEST_CASE("byte-level BPE matches gpt-3-encoder on thousands of sentences", "[client][tokenizer][bpe]") {
  const std::string gpt2 = test::shared_dir() + "/hub/openai-community/gpt2/tokenizer.json";
  if (!test::path_exists(gpt2)) {
    WARN("skipped: " << gpt2 << " not found");
    return;
  }
  auto tok = load_hf_tokenizer(gpt2, "");
  REQUIRE(tok.is_ok());
  // gpt-3-encoder has no special tokens: it spells "<|endoftext|>" out as text. Compare in that mode;
  // the special-token mode is checked separately below.
  tok.value()->set_parse_special(false);
  const auto fixture = nlohmann::json::parse(slurp(test::fixtures_dir() + "/gpt2_bpe/reference_ids.json"));
  std::map<std::string, std::vector<std::string>> files;
  size_t checked = 0, mismatched = 0, roundtrip_failed = 0;
  for (const auto& c : fixture["cases"]) {
    std::string text;
    if (c.contains("text")) {
      text = c["text"];
    } else {
      const std::string file = c["file"];
      if (!files.count(file)) files[file] = lines_of(test::shared_dir() + "/" + file);
      const std::string line = files[file].at(c["line"].get<size_t>() - 1);
      text = line.substr(0, line.find('\t'));
    }
    auto ids = tok.value()->encode(text, false, false);
    REQUIRE(ids.is_ok());
    const auto want = c["ids"].get<std::vector<int32_t>>();
    ++checked;
    if (ids.value() != want) {
      if (++mismatched <= 5) WARN("mismatch for: " << text);
    }
    if (tok.value()->decode(ids.value()) != text) ++roundtrip_failed;
  }
  INFO(checked << " sentences");
  auto eot_text = tok.value()->encode("a<|endoftext|>b", false, false);
  CHECK(eot_text.value().size() > 3);  // spelled out
  tok.value()->set_parse_special(true);
  auto eot = tok.value()->encode("a<|endoftext|>b", false, false);
  CHECK(eot.value() == std::vector<int32_t>{64, 50256, 65});
  CHECK(checked > 2500);
  CHECK(mismatched == 0);
  CHECK(roundtrip_failed == 0);
}

TEST_CASE("a SentencePiece-style tokenizer.json with byte fallback encodes and decodes", "[client][tokenizer][bpe]") {
  // A tiny Llama-2-style tokenizer.json written here: Prepend/Replace normalizer, "▁" pieces, merges,
  // byte fallback, <s> added by the post-processor.
  nlohmann::json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    vocab[name] = 3 + b;
  }
  const std::vector<std::string> pieces = {"\xE2\x96\x81", "h", "e", "l", "o", "w", "r", "d", "\xE2\x96\x81h", "ll",
                                           "\xE2\x96\x81he", "\xE2\x96\x81hell", "\xE2\x96\x81hello", "or",
                                           "\xE2\x96\x81w", "\xE2\x96\x81wor", "\xE2\x96\x81world"};
  for (size_t i = 0; i < pieces.size(); ++i) vocab[pieces[i]] = 259 + static_cast<int>(i);
  nlohmann::json merges = {"\xE2\x96\x81 h", "l l", "\xE2\x96\x81h e", "\xE2\x96\x81he ll", "\xE2\x96\x81hell o", "o r",
                           "\xE2\x96\x81 w", "\xE2\x96\x81w or"};
  nlohmann::json j = {
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}, {"byte_fallback", true}, {"unk_token", "<unk>"}}},
      {"added_tokens", {{{"id", 0}, {"content", "<unk>"}}, {{"id", 1}, {"content", "<s>"}}, {{"id", 2}, {"content", "</s>"}}}},
      {"normalizer",
       {{"type", "Sequence"},
        {"normalizers",
         {{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}},
          {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}}}}}},
      {"pre_tokenizer", nullptr},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}}}},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders",
         {{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
          {{"type", "ByteFallback"}},
          {{"type", "Fuse"}},
          {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}}};
  const std::string dir = test::temp_dir("");
  std::ofstream(dir + "/tokenizer.json") << j.dump();
  auto tok = load_hf_tokenizer(dir + "/tokenizer.json", "");
  REQUIRE(tok.is_ok());
  auto ids = tok.value()->encode("hello world!", true, false);
  REQUIRE(ids.is_ok());
  // <s>, "▁hello", "▁wor", "l", "d", then "!" (not in the vocabulary) falls back to its byte.
  CHECK(ids->front() == 1);
  CHECK((*ids)[1] == vocab["\xE2\x96\x81hello"].get<int>());
  CHECK(ids->back() == 3 + '!');
  CHECK(tok.value()->decode(ids.value()) == "hello world!");
  CHECK(tok.value()->bos_id() == 1);
  CHECK(tok.value()->eos_id() == 2);
}
