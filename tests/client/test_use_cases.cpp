// The use-case layer every front end calls (CLI, SDK, simulator): one implementation of evaluate,
// export and log loading.
#include <catch2/catch.hpp>

#include <cmath>

#include "model_fixtures.h"
#include "pocketllm/client/use_cases.h"
#include "pocketllm/common/file_util.h"

using namespace pocketllm;

namespace {

std::string toy_run(const std::string& dir) {
  test::write_toy_model_dir(dir, 5);
  test::write_lines(dir + "/train.txt", {"the cat", "a cat at the bed", "he had a cat", "the bad cat", "a good cat", "the hat"});
  FinetuneRequest r;
  r.out_dir = dir + "/run";
  r.threads = 1;
  r.spec.model_path = dir;
  r.spec.data_path = dir + "/train.txt";
  r.spec.train.steps = 6;
  r.spec.train.batch_size = 2;
  r.spec.train.lr = 5e-2f;
  r.spec.train.eps = 1e-3f;
  r.spec.train.weight_decay = 0.1f;
  r.spec.task.kind = "lm";
  REQUIRE(run_finetune(r).is_ok());
  return r.out_dir;
}

}  // namespace

TEST_CASE("use cases: evaluate a model, a run, and the run's export: refuse ambiguous requests", "[client][use_cases]") {
  const std::string dir = test::temp_dir("");
  const std::string run = toy_run(dir);
  EvaluateRequest base;
  base.model_path = dir;
  base.data_path = dir + "/train.txt";
  base.threads = 1;
  auto before = run_evaluate(base);
  REQUIRE(before.is_ok());
  CHECK(before->result.count == 6);
  CHECK(std::isfinite(before->result.loss));

  EvaluateRequest of_run = base;
  of_run.model_path.clear();
  of_run.run_dir = run;
  auto after = run_evaluate(of_run);
  REQUIRE(after.is_ok());
  CHECK(after->result.loss != before->result.loss);  // the run's weights, not the base's

  auto step = export_run(run, dir + "/exported", 1);
  REQUIRE(step.is_ok());
  CHECK(step.value() == 6);
  EvaluateRequest of_export = base;
  of_export.model_path = dir + "/exported";
  auto exported = run_evaluate(of_export);
  REQUIRE(exported.is_ok());
  CHECK(exported->result.loss == after->result.loss);  // the export is exactly the run's weights

  EvaluateRequest both = of_run;
  both.model_path = dir;
  CHECK(run_evaluate(both).status().code() == StatusCode::kInvalidArgument);
  EvaluateRequest bad_batch = base;
  bad_batch.batch_size = 0;
  CHECK(run_evaluate(bad_batch).status().code() == StatusCode::kInvalidArgument);
  EvaluateRequest no_file = base;
  no_file.data_path = dir + "/missing.txt";
  CHECK_FALSE(run_evaluate(no_file).is_ok());
}

TEST_CASE("use cases: a log loads the same from a run directory, its binary and its JSON form", "[client][use_cases]") {
  const std::string dir = test::temp_dir("");
  const std::string run = toy_run(dir);
  auto from_run = load_replayable_log(run);
  REQUIRE(from_run.is_ok());
  CHECK(from_run->from_run);
  CHECK(from_run->steps.size() == 6);
  CHECK(from_run->steps[0].decay != 0.0f);  // a run's steps keep their weight decay
  auto r = RunDir::open(run);
  REQUIRE(r.is_ok());
  const UpdateLog log = r->update_log();
  REQUIRE(write_file_atomic(dir + "/log.bin", log.to_binary()).is_ok());
  REQUIRE(write_file_atomic(dir + "/log.json", log.to_json()).is_ok());
  for (const char* f : {"/log.bin", "/log.json"}) {
    auto plain = load_replayable_log(dir + f);
    REQUIRE(plain.is_ok());
    CHECK_FALSE(plain->from_run);
    REQUIRE(plain->steps.size() == 1);
    CHECK(plain->entries == log.size());
    CHECK(plain->steps[0].entries == log.entries());
  }
  REQUIRE(write_file_atomic(dir + "/garbage.json", "{not a log").is_ok());
  CHECK_FALSE(load_replayable_log(dir + "/garbage.json").is_ok());
  CHECK(load_replayable_log(dir + "/none").status().code() == StatusCode::kNotFound);
}

TEST_CASE("use cases: a run spec without its perturbation spec version is refused (found by fuzz_run_dir)", "[client][use_cases]") {
  // Was a heap-use-after-free: the error message read a missing key of a const JSON object.
  auto spec = RunSpec::from_json(nlohmann::json::parse(R"({"format": "pocketllm.run", "version": 1, "modoss_minus": 2.1})"), "spec.json");
  REQUIRE_FALSE(spec.is_ok());
  CHECK(spec.status().code() == StatusCode::kUnsupported);
  CHECK(spec.status().message().find("null") != std::string::npos);
  const std::string dir = test::temp_dir("");
  REQUIRE(write_file_atomic(dir + "/spec.json", R"({"format": "pocketllm.run", "version": 1})").is_ok());
  CHECK_FALSE(RunDir::open(dir).is_ok());
}

#include <climits>
#include <cstring>
#include <fstream>

#include "pocketllm/client/loader.h"

TEST_CASE("a llama2.c header with vocab INT32_MIN is refused (found by fuzz_llama2c)", "[client][loader]") {
  // Was undefined behaviour: the shared-classifier sign of the vocab field was negated in 32 bits.
  const std::string path = test::temp_dir("") + "/hostile.bin";
  const int32_t h[7] = {8, 16, 1, 2, 2, INT32_MIN, 4};
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(h), sizeof h);
  auto loaded = load_llama2c(path, LoadOptions{});
  REQUIRE_FALSE(loaded.is_ok());
  CHECK(loaded.status().code() == StatusCode::kCorrupt);
}

#include "pocketllm/client/tokenizer.h"

TEST_CASE("tokenizer.json ids outside [0, 2^24] are refused (found by fuzz_tokenizer_json)", "[client][tokenizer]") {
  // Was undefined behaviour: 8.9e43 converted to an int id (and a negative id would index past the vocabulary).
  const std::string dir = test::temp_dir("");
  for (const char* id : {"88888888888888888888888888888888888888888888", "-1", "2.5", "16777217"}) {
    const std::string json_text = std::string(R"({"model": {"type": "BPE", "vocab": {"H": 0, "e": 1}, "merges": []},)") +
                                  R"("added_tokens": [{"id": )" + id + R"(, "content": "<|endoftext|>", "special": true}]})";
    REQUIRE(write_file_atomic(dir + "/tokenizer.json", json_text).is_ok());
    INFO(id);
    CHECK_FALSE(load_hf_tokenizer(dir + "/tokenizer.json", "").is_ok());
  }
  REQUIRE(write_file_atomic(dir + "/tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"H": 1e300}, "merges": []}})").is_ok());
  CHECK_FALSE(load_hf_tokenizer(dir + "/tokenizer.json", "").is_ok());
}
