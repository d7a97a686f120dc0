// The numeric options of a run: out-of-range values are refused when a run is created and when a
// spec.json is read (a hand-edited or damaged spec must not resume with a negative lr or zero batch).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sys/stat.h>

#include "model_fixtures.h"
#include "run_fixtures.h"
#include "pocketllm/client/finetune.h"
#include "pocketllm/client/run_dir.h"
#include "pocketllm/client/trainer.h"
#include "pocketllm/common/file_util.h"
#include <nlohmann/json.hpp>

using namespace pocketllm;
using nlohmann::json;

namespace {

const float kInf = std::numeric_limits<float>::infinity();
const float kNaN = std::numeric_limits<float>::quiet_NaN();

struct BadOption {
  const char* field;  // the name the message must carry
  void (*set)(TrainOptions*);
};

// One bad value per row; every other field stays valid.
const std::vector<BadOption>& bad_options() {
  static const std::vector<BadOption> rows = {
      {"steps", [](TrainOptions* o) { o->steps = -1; }},
      {"batch_size", [](TrainOptions* o) { o->batch_size = 0; }},
      {"batch_size", [](TrainOptions* o) { o->batch_size = -3; }},
      {"batch_size", [](TrainOptions* o) { o->batch_size = 65537; }},
      {"lr", [](TrainOptions* o) { o->lr = -1e-3f; }},
      {"lr", [](TrainOptions* o) { o->lr = kInf; }},
      {"lr", [](TrainOptions* o) { o->lr = kNaN; }},
      {"eps", [](TrainOptions* o) { o->eps = 0.0f; }},
      {"eps", [](TrainOptions* o) { o->eps = -1e-3f; }},
      {"eps", [](TrainOptions* o) { o->eps = kInf; }},
      {"warmup_steps", [](TrainOptions* o) { o->warmup_steps = -5; }},
      {"n_spsa", [](TrainOptions* o) { o->n_spsa = 0; }},
      {"n_spsa", [](TrainOptions* o) { o->n_spsa = 100000000; }},
      {"clip", [](TrainOptions* o) { o->clip = -1.0f; }},
      {"clip", [](TrainOptions* o) { o->clip = kNaN; }},
      {"weight_decay", [](TrainOptions* o) { o->weight_decay = -0.1f; }},
      {"weight_decay", [](TrainOptions* o) { o->weight_decay = 1e30f; }},
      {"weight_decay", [](TrainOptions* o) { o->lr = 4.0f; o->weight_decay = 0.5f; }},  // 1 - lr wd < 0
      {"decay_to_start", [](TrainOptions* o) { o->optimizer = Optimizer::kAdam; o->n_spsa = 8; o->decay_to_start = -0.1f; }},
      {"decay_to_start", [](TrainOptions* o) { o->optimizer = Optimizer::kAdam; o->n_spsa = 8; o->decay_to_start = kNaN; }},
      {"decay_to_start", [](TrainOptions* o) { o->optimizer = Optimizer::kAdam; o->n_spsa = 8; o->decay_to_start = kInf; }},
      {"decay_to_start", [](TrainOptions* o) { o->decay_to_start = 0.01f; }},  // sgd: adam only
      {"momentum", [](TrainOptions* o) { o->momentum = 1.0f; o->momentum_window = 4; }},
      {"momentum_window", [](TrainOptions* o) { o->momentum = 0.5f; o->momentum_window = 0; }},
  };
  return rows;
}

bool mentions(const Status& s, const std::string& field) { return s.message().find(field) != std::string::npos; }

std::string file_text(const std::string& path) {
  auto text = read_file(path);
  REQUIRE(text.is_ok());
  return text.value();
}

}  // namespace

TEST_CASE("train options: valid ones pass, each out-of-range field is refused by name", "[client][options]") {
  TrainOptions good;
  CHECK(check_train_options(good).is_ok());
  good.steps = 0;  // a run that only evaluates
  good.lr = 0.0f;  // weights that stay where they are
  good.momentum = 0.9f;
  good.momentum_window = 44;
  good.weight_decay = 0.1f;
  good.clip = 5.0f;
  CHECK(check_train_options(good).is_ok());
  TrainOptions adam;
  adam.optimizer = Optimizer::kAdam;
  adam.n_spsa = 8;
  adam.decay_to_start = 0.002f;
  CHECK(check_train_options(adam).is_ok());
  for (const auto& row : bad_options()) {
    TrainOptions o;
    row.set(&o);
    const Status s = check_train_options(o);
    INFO(row.field);
    CHECK_FALSE(s.is_ok());
    CHECK(mentions(s, row.field));
  }
}

TEST_CASE("a spec.json with an out-of-range option is corrupt, and the run does not resume", "[client][options]") {
  const std::string dir = test::temp_dir("");
  test::write_toy_model_dir(dir, 47);
  test::write_lines(dir + "/train.txt", {"the cat", "a cat at the bed", "he had a cat", "the hat"});
  FinetuneRequest req = test::toy_lm_request(dir, dir + "/run", 4);
  req.spec.train.schedule = LrSchedule::kConstant;
  REQUIRE(run_finetune(req, [](const StepProgress& p) { return p.step < 1; }).is_ok());  // stopped after 2 steps
  const std::string spec_path = dir + "/run/spec.json";
  const std::string original = file_text(spec_path);
  const json spec = json::parse(original);
  REQUIRE(RunSpec::from_json(spec, "spec.json").is_ok());

  for (const auto& [key, value] : std::vector<std::pair<std::string, json>>{
           {"lr", -1.0}, {"lr", 1e39}, {"eps", 0.0}, {"batch_size", 0}, {"batch_size", -3}, {"n_spsa", 0},
           {"clip", -1.0}, {"warmup_steps", -5}, {"steps", -1}, {"weight_decay", -1.0}}) {
    json bad = spec;
    bad[key] = value;
    INFO(key << " = " << value.dump());
    auto parsed = RunSpec::from_json(bad, "spec.json");
    REQUIRE_FALSE(parsed.is_ok());
    CHECK(parsed.status().code() == StatusCode::kCorrupt);
    CHECK(mentions(parsed.status(), key));
    // The same through the front door: resuming refuses, and the run's files stay as they were.
    std::ofstream(spec_path, std::ios::binary | std::ios::trunc) << bad.dump(2);
    const std::string log_before = file_text(dir + "/run/log.jsonl");
    FinetuneRequest resume = req;
    resume.resume = true;
    auto r = run_finetune(resume);
    REQUIRE_FALSE(r.is_ok());
    CHECK(mentions(r.status(), key));
    CHECK(file_text(dir + "/run/log.jsonl") == log_before);
  }
  std::ofstream(spec_path, std::ios::binary | std::ios::trunc) << original;
  FinetuneRequest resume = req;
  resume.resume = true;
  CHECK(run_finetune(resume).is_ok());
}

TEST_CASE("a run whose lr is not a finite float32 is refused before its directory exists", "[client][options]") {
  const std::string dir = test::temp_dir("");
  test::write_toy_model_dir(dir, 48);
  test::write_lines(dir + "/train.txt", {"the cat", "a cat at the bed"});
  FinetuneRequest req = test::toy_lm_request(dir, dir + "/run", 2);
  req.spec.train.lr = static_cast<float>(1e300);  // what a double lr past FLT_MAX becomes
  auto r = run_finetune(req);
  REQUIRE_FALSE(r.is_ok());
  CHECK(mentions(r.status(), "lr"));
  struct stat st {};
  CHECK(::stat((dir + "/run").c_str(), &st) != 0);
}

TEST_CASE("a run whose every step is skipped stops with an error instead of running on, and resumes", "[client][options]") {
  const std::string dir = test::temp_dir("");
  test::write_toy_model_dir(dir, 49);
  test::write_lines(dir + "/train.txt", {"the cat", "a cat at the bed", "he had a cat", "the hat"});
  {  // a NaN in the first attention matrix: every loss is NaN, whatever the direction
    const std::string path = dir + "/model.safetensors";
    std::string bytes = file_text(path);
    uint64_t header_len = 0;
    std::memcpy(&header_len, bytes.data(), 8);
    const json header = json::parse(bytes.substr(8, header_len));
    const json& q = header.at("model.layers.0.self_attn.q_proj.weight");
    REQUIRE(q.at("dtype") == "F32");
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::memcpy(&bytes[8 + header_len + q.at("data_offsets")[0].get<size_t>()], &nan, 4);
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  }
  FinetuneRequest req = test::toy_lm_request(dir, dir + "/run", 100);
  auto r = run_finetune(req);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message().find("steps 0.." + std::to_string(kMaxSkippedInARow - 1) + " all skipped") != std::string::npos);
  CHECK(r.status().message().find("from the first step") != std::string::npos);
  auto count_skipped = [&] {
    std::ifstream f(dir + "/run/log.jsonl");
    int n = 0;
    for (std::string line; std::getline(f, line);) n += line.find("\"skipped\"") != std::string::npos;
    return n;
  };
  CHECK(count_skipped() == kMaxSkippedInARow);  // logged, so the run is consistent and resumes
  FinetuneRequest resume = req;
  resume.resume = true;
  auto again = run_finetune(resume);
  REQUIRE_FALSE(again.is_ok());
  CHECK(again.status().message().find("steps " + std::to_string(kMaxSkippedInARow) + "..") != std::string::npos);
  CHECK(count_skipped() == 2 * kMaxSkippedInARow);

  // The same run on a healthy model goes to its end.
  const std::string healthy = test::temp_dir("");
  test::write_toy_model_dir(healthy, 49);
  test::write_lines(healthy + "/train.txt", {"the cat", "a cat at the bed", "he had a cat", "the hat"});
  FinetuneRequest fine = test::toy_lm_request(healthy, healthy + "/run", 40);
  auto ok = run_finetune(fine);
  REQUIRE(ok.is_ok());
  CHECK(ok->steps_done == 40);
  CHECK(ok->skipped_steps == 0);
}
