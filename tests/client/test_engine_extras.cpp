// Sharded checkpoints, sampling, and masked-LM classification at the <mask> position.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include "test_paths.h"
#include "model_fixtures.h"
#include "pocketllm/client/generate.h"
#include "pocketllm/client/loader.h"
#include "pocketllm/client/task.h"
#include "pocketllm/common/file_util.h"

using namespace pocketllm;
using nlohmann::json;

TEST_CASE("a sharded Hugging Face checkpoint loads like the single file", "[client][loader]") {
  const std::string dir = test::temp_dir("");
  const auto c = test::write_toy_model_dir(dir, 21);
  auto single = load_model(dir);
  REQUIRE(single.is_ok());
  // Split the tensors over two shards with an index, then remove model.safetensors.
  const auto tensors = test::random_llama_tensors(c, 21);
  const std::string sharded = dir + "/sharded";
  REQUIRE(::mkdir(sharded.c_str(), 0755) == 0);
  std::vector<TensorToWrite> a, b;
  json weight_map;
  for (size_t i = 0; i < tensors.size(); ++i) {
    auto& part = i % 2 ? b : a;
    part.push_back({tensors[i].name, DType::kF32, tensors[i].shape, tensors[i].values.data()});
    weight_map[tensors[i].name] = i % 2 ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors";
  }
  REQUIRE(write_safetensors(sharded + "/model-00001-of-00002.safetensors", a).is_ok());
  REQUIRE(write_safetensors(sharded + "/model-00002-of-00002.safetensors", b).is_ok());
  std::ofstream(sharded + "/model.safetensors.index.json") << json{{"weight_map", weight_map}}.dump();
  auto cfg = read_file(dir + "/config.json");
  REQUIRE(write_file_atomic(sharded + "/config.json", cfg.value()).is_ok());
  auto multi = load_model(sharded);
  REQUIRE(multi.is_ok());
  CHECK(multi->model->weights().compute_model_id() == single->model->weights().compute_model_id());
  std::vector<float> h1, h2;
  const TokenBatch batch = TokenBatch::from_sequences({{1, 5, 9, 13}});
  REQUIRE(single->model->forward_hidden(nullptr, batch, {}, nullptr, &h1).is_ok());
  REQUIRE(multi->model->forward_hidden(nullptr, batch, {}, nullptr, &h2).is_ok());
  CHECK(std::memcmp(h1.data(), h2.data(), h1.size() * 4) == 0);

  SECTION("a shard name escaping the directory is refused") {
    weight_map[tensors[0].name] = "../model.safetensors";
    std::ofstream(sharded + "/model.safetensors.index.json") << json{{"weight_map", weight_map}}.dump();
    CHECK(load_model(sharded).status().message().find("plain file name") != std::string::npos);
  }
}

TEST_CASE("sampling is seeded, honours top-k/top-p and follows the softmax", "[client][generate]") {
  const std::vector<float> logits = {1.0f, 3.0f, 2.0f, 0.5f, 2.9f};
  GenerateOptions greedy;
  uint64_t state = 0;
  CHECK(sample_token(logits.data(), 5, greedy, &state) == 1);
  GenerateOptions o;
  o.greedy = false;
  o.temperature = 1.0f;
  o.top_k = 1;
  state = 0;
  CHECK(sample_token(logits.data(), 5, o, &state) == 1);  // top-k 1 is greedy
  o.top_k = 0;
  o.seed = 42;
  std::vector<int> counts(5, 0), again(5, 0);
  uint64_t s1 = 0, s2 = 0;
  const int n = 20000;
  std::vector<int32_t> seq1, seq2;
  for (int i = 0; i < n; ++i) {
    seq1.push_back(sample_token(logits.data(), 5, o, &s1));
    seq2.push_back(sample_token(logits.data(), 5, o, &s2));
    ++counts[seq1.back()];
  }
  CHECK(seq1 == seq2);  // same seed, same samples
  double z = 0;
  for (float l : logits) z += std::exp(l);
  for (int i = 0; i < 5; ++i) {
    const double p = std::exp(logits[i]) / z;
    INFO("token " << i);
    CHECK(std::fabs(counts[i] / double(n) - p) < 5 * std::sqrt(p * (1 - p) / n) + 1e-3);
  }
  o.seed = 43;
  uint64_t s3 = 0;
  std::vector<int32_t> seq3;
  for (int i = 0; i < 200; ++i) seq3.push_back(sample_token(logits.data(), 5, o, &s3));
  CHECK(std::vector<int32_t>(seq1.begin(), seq1.begin() + 200) != seq3);
  // top-p 0.5 keeps only the two most likely tokens (1 and 4: 0.33 + 0.31 of the mass).
  o.top_p = 0.5f;
  uint64_t s4 = 0;
  for (int i = 0; i < 2000; ++i) {
    const int t = sample_token(logits.data(), 5, o, &s4);
    REQUIRE((t == 1 || t == 4));
  }
}

TEST_CASE("a masked LM classifies at its <mask> token", "[client][task][arch]") {
  // The RoBERTa fixture (vocab 50) with a character-level tokenizer.json made here.
  const std::string src = test::fixtures_dir() + "/arch/roberta";
  const std::string dir = test::temp_dir("");
  for (const char* f : {"config.json", "model.safetensors"})
    REQUIRE(write_file_atomic(dir + "/" + f, read_file(src + "/" + f).value()).is_ok());
  json vocab = {{"<s>", 0}, {"<pad>", 1}, {"</s>", 2}, {"<unk>", 3}, {"<mask>", 4}, {" ", 5}, {".", 6}, {" y", 7}, {" n", 8}};
  int id = 9;
  for (char ch = 'a'; ch <= 'z'; ++ch) vocab[std::string(1, ch)] = id++;
  for (char ch : std::string("ITw")) vocab[std::string(1, ch)] = id++;
  json j = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"  y", "  n"}}, {"unk_token", "<unk>"}}},
            {"added_tokens", {{{"id", 0}, {"content", "<s>"}}, {{"id", 1}, {"content", "<pad>"}}, {{"id", 2}, {"content", "</s>"}},
                              {{"id", 3}, {"content", "<unk>"}}, {{"id", 4}, {"content", "<mask>"}}}},
            {"post_processor", {{"type", "RobertaProcessing"}, {"sep", {"</s>", 2}}, {"cls", {"<s>", 0}}}}};
  REQUIRE(id <= 50);
  j["model"]["merges"] = json::array({json::array({" ", "y"}), json::array({" ", "n"})});
  std::ofstream(dir + "/tokenizer.json") << j.dump();
  auto loaded = load_model(dir, LoadOptions::with_tokenizer());
  REQUIRE(loaded.is_ok());
  CHECK_FALSE(loaded->model->is_causal());
  auto ds = parse_dataset("a cat\t1\nno dog\t0\n", "tsv", "m.tsv", DatasetOptions{true, true});
  REQUIRE(ds.is_ok());
  TaskOptions to;
  to.kind = "classify";
  to.label_words = parse_label_words("0:no,1:yes").value();
  to.prompt_template = "{text}. It was";
  auto no_mask = make_task(ds.value(), *loaded->tokenizer, *loaded->model, to);
  CHECK(no_mask.status().message().find("<mask>") != std::string::npos);
  to.prompt_template = "{text}. It was<mask>.";
  auto task = make_task(ds.value(), *loaded->tokenizer, *loaded->model, to);
  REQUIRE(task.is_ok());
  auto l = task.value()->loss(nullptr, *loaded->model, {0, 1}, Perturbation{});
  REQUIRE(l.is_ok());
  CHECK(l->count == 2);
  // The same loss from the model's logits at the mask position, computed by hand.
  auto ids = loaded->tokenizer->encode("a cat. It was<mask>.", true, true);
  REQUIRE(ids.is_ok());
  CHECK(ids->front() == 0);
  CHECK(ids->back() == 2);
  const size_t mask_at = std::find(ids->begin(), ids->end(), 4) - ids->begin();
  std::vector<float> hidden, logits;
  REQUIRE(loaded->model->forward_hidden(nullptr, TokenBatch::from_sequences({ids.value()}), {}, nullptr, &hidden).is_ok());
  loaded->model->logits(nullptr, hidden.data(), {static_cast<int>(mask_at)}, {}, &logits);
  const double yes = logits[7], no = logits[8];
  const double want0 = std::log(std::exp(yes) + std::exp(no)) - yes;  // label 1 = "yes"
  auto one = task.value()->loss(nullptr, *loaded->model, {0}, Perturbation{});
  CHECK(one->sum == Approx(want0).epsilon(1e-5));
}

TEST_CASE("the repetition penalty divides positive and multiplies negative logits of seen tokens only", "[client][generate]") {
  std::vector<float> logits = {2.0f, -1.0f, 3.0f, -0.5f, 0.0f};
  const std::vector<char> seen = {1, 1, 0, 0, 1};
  apply_repetition_penalty(logits.data(), 5, seen, 1.25f);
  CHECK(logits[0] == 2.0f / 1.25f);
  CHECK(logits[1] == -1.0f * 1.25f);
  CHECK(logits[2] == 3.0f);   // not seen
  CHECK(logits[3] == -0.5f);  // not seen
  CHECK(logits[4] == 0.0f);
  std::vector<float> same = {2.0f, -1.0f};
  apply_repetition_penalty(same.data(), 2, {1, 1}, 1.0f);
  CHECK(same == std::vector<float>{2.0f, -1.0f});
  // In generation: greedy decoding that loops without a penalty avoids repeating with one.
  const std::string dir = test::temp_dir("");
  test::write_toy_model_dir(dir, 41);
  auto m = load_model(dir, LoadOptions::with_tokenizer());
  REQUIRE(m.is_ok());
  GenerateOptions o;
  o.max_new_tokens = 40;
  o.stop_at_eos = false;
  auto plain = generate(nullptr, *m->model, {1, 270}, o);
  REQUIRE(plain.is_ok());
  auto distinct = [](const std::vector<int32_t>& t, size_t from) {
    return std::set<int32_t>(t.begin() + static_cast<std::ptrdiff_t>(from), t.end()).size();
  };
  o.repetition_penalty = 100.0f;
  auto penalised = generate(nullptr, *m->model, {1, 270}, o);
  REQUIRE(penalised.is_ok());
  CHECK(distinct(penalised->tokens, 2) > distinct(plain->tokens, 2));
  o.repetition_penalty = 0.0f;
  CHECK_FALSE(generate(nullptr, *m->model, {1, 270}, o).is_ok());
}
