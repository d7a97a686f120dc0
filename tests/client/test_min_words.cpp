// --min-words: short training examples are dropped before the k-shot draw, so a run over the whole file
// is the run over a file that never had them; the eval set is not touched (docs/training.md).
#include <catch2/catch.hpp>

#include "model_fixtures.h"
#include "pocketllm/client/finetune.h"

using namespace pocketllm;

TEST_CASE("count_words counts runs of non-blank characters as awk splits fields", "[client][data]") {
  CHECK(count_words("") == 0);
  CHECK(count_words("   ") == 0);
  CHECK(count_words("one") == 1);
  CHECK(count_words("  two  words ") == 2);
  CHECK(count_words("a\tb\nc\r\nd\ve\ff") == 6);
  CHECK(count_words("it 's a -- fine , film") == 7);  // punctuation between blanks is a word, as in awk
  CHECK(count_words("naïve café") == 2);               // UTF-8 bytes are not blanks
}

TEST_CASE("drop_short_examples keeps the long examples in order and errors when none is left", "[client][data]") {
  Dataset d;
  d.path = "x.tsv";
  for (const char* t : {"a b c", "a", "a b", "a b c d", "  a  b  c  "}) d.examples.push_back({t, "", "0", 0});
  Dataset all = d;
  auto none = drop_short_examples(&all, 0);
  REQUIRE(none.is_ok());
  CHECK(none.value() == 0);
  CHECK(all.examples.size() == 5);
  auto dropped = drop_short_examples(&d, 3);
  REQUIRE(dropped.is_ok());
  CHECK(dropped.value() == 2);
  REQUIRE(d.examples.size() == 3);
  CHECK(d.examples[0].text == "a b c");
  CHECK(d.examples[1].text == "a b c d");
  CHECK(d.examples[2].text == "  a  b  c  ");
  auto empty = drop_short_examples(&d, 5);
  REQUIRE_FALSE(empty.is_ok());
  CHECK(empty.status().message().find("x.tsv: none of its 3 examples has 5 or more words") != std::string::npos);
}

TEST_CASE("the run spec records min_words, older specs read as 0 and a negative one is refused", "[client][data]") {
  RunSpec s;
  s.model_path = "m";
  s.model_id = std::string(64, 'a');
  s.data_path = "d.tsv";
  s.min_words = 6;
  auto back = RunSpec::from_json(s.to_json(), "spec.json");
  REQUIRE(back.is_ok());
  CHECK(back->min_words == 6);
  s.min_words = 0;
  auto j = s.to_json();
  CHECK_FALSE(j["data"].contains("min_words"));  // a run that keeps every example writes the spec it always did
  REQUIRE(RunSpec::from_json(j, "spec.json").is_ok());
  CHECK(RunSpec::from_json(j, "spec.json")->min_words == 0);
  j["data"]["min_words"] = -1;
  auto bad = RunSpec::from_json(j, "spec.json");
  REQUIRE_FALSE(bad.is_ok());
  CHECK(bad.status().message().find("min_words") != std::string::npos);
}

TEST_CASE("a run with min_words trains exactly as a run on the file without the short rows", "[client][data][e2e]") {
  const std::string dir = test::temp_dir("");
  test::write_toy_model_dir(dir, 31);
  const std::vector<std::string> mixed = {"the cat", "a cat at the bed", "he had a cat", "the bad cat", "a good cat",
                                          "the hat", "cat cat cat", "the cheese", "abc", "a bee and a cat",
                                          "that cat is good", "the end", "a hat", "the bee", "he is bad", "a dog"};
  std::vector<std::string> long_only;
  for (const auto& s : mixed)
    if (count_words(s) >= 3) long_only.push_back(s);
  REQUIRE(long_only.size() == 8);
  test::write_lines(dir + "/mixed.txt", mixed);
  test::write_lines(dir + "/long.txt", long_only);
  auto request = [&](const std::string& data, int min_words, const std::string& out) {
    FinetuneRequest r;
    r.out_dir = dir + "/" + out;
    r.threads = 1;
    r.spec.model_path = dir;
    r.spec.data_path = dir + "/" + data;
    r.spec.train.steps = 6;
    r.spec.train.batch_size = 2;
    r.spec.train.lr = 1e-2f;
    r.spec.train.seed = 0x33;
    r.spec.train.data_seed = 5;
    r.spec.task.kind = "lm";
    r.spec.k_shot = 5;  // a k-shot draw from the long rows: drawn before the filter it would differ
    r.spec.min_words = min_words;
    return r;
  };
  auto filtered = run_finetune(request("mixed.txt", 3, "filtered"));
  REQUIRE(filtered.is_ok());
  CHECK(filtered->dropped_short == 8);
  CHECK(filtered->train_examples == 5);
  auto plain = run_finetune(request("long.txt", 0, "plain"));
  REQUIRE(plain.is_ok());
  CHECK(plain->dropped_short == 0);
  auto unfiltered = run_finetune(request("mixed.txt", 0, "unfiltered"));
  REQUIRE(unfiltered.is_ok());
  auto a = RunDir::open(dir + "/filtered"), b = RunDir::open(dir + "/plain"), c = RunDir::open(dir + "/unfiltered");
  REQUIRE((a.is_ok() && b.is_ok() && c.is_ok()));
  CHECK(a->spec().min_words == 3);
  REQUIRE(a->steps().size() == 6);
  REQUIRE(b->steps().size() == 6);
  bool all_same = true, any_differs_unfiltered = false;
  for (size_t i = 0; i < 6; ++i) {
    all_same = all_same && a->steps()[i].entries == b->steps()[i].entries && a->steps()[i].loss_plus == b->steps()[i].loss_plus;
    any_differs_unfiltered = any_differs_unfiltered || a->steps()[i].loss_plus != c->steps()[i].loss_plus;
  }
  CHECK(all_same);
  CHECK(any_differs_unfiltered);  // the filter changed what was trained on
}
