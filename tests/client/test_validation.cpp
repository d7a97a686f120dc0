// A validation split carved from the training sample, and a run that ends with its best validated step
// (docs/training.md, "Validation and the best step").
#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>
#include <set>

#include "model_fixtures.h"
#include "pocketllm/client/finetune.h"
#include "pocketllm/common/safetensors.h"

using namespace pocketllm;

namespace {

using test::tensor_bytes;

std::vector<std::string> sentences() {
  return {"the cat", "a cat at the bed", "he had a cat", "the bad cat", "a good cat", "the hat", "cat cat cat",
          "the cheese", "abc", "a bee and a cat", "that cat is good", "the end", "a hat", "the bee", "he is bad", "a dog"};
}

FinetuneRequest request(const std::string& dir, const std::string& out, int steps, float lr) {
  FinetuneRequest r;
  r.out_dir = out;
  r.threads = 2;
  r.spec.model_path = dir;
  r.spec.data_path = dir + "/train.txt";
  r.spec.train.steps = steps;
  r.spec.train.batch_size = 4;
  r.spec.train.lr = lr;
  r.spec.train.eps = 1e-3f;
  r.spec.train.seed = 0x51;
  r.spec.train.data_seed = 3;
  r.spec.snapshot_every = 4;
  r.spec.task.kind = "lm";
  r.spec.validation.examples = 4;
  r.spec.validation.every = 3;
  return r;
}

std::vector<nlohmann::json> metrics(const std::string& run) {
  std::ifstream f(run + "/metrics.jsonl");
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(f, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}


std::unique_ptr<Task> classify_task(const std::string& dir, LoadedModel* loaded, int n) {
  std::string tsv = "sentence\tlabel\n";
  const auto s = sentences();
  for (int i = 0; i < n; ++i) tsv += s[static_cast<size_t>(i) % s.size()] + "\t" + (i % 3 == 0 ? "1" : "0") + "\n";
  DatasetOptions need_label;
  need_label.need_label = true;
  auto ds = parse_dataset(tsv, "tsv", dir + "/c.tsv", need_label);
  REQUIRE(ds.is_ok());
  TaskOptions to;
  to.kind = "classify";
  to.label_words = parse_label_words("0:cat,1:the").value();
  auto task = make_task(ds.value(), *loaded->tokenizer, *loaded->model, to);
  REQUIRE(task.is_ok());
  return std::move(task.value());
}

}  // namespace

TEST_CASE("the validation split takes n per label from the sample, disjoint and seeded", "[client][validation]") {
  const std::string dir = test::temp_dir("");
  test::write_toy_model_dir(dir, 23);
  auto loaded = load_model(dir, LoadOptions::with_tokenizer());
  REQUIRE(loaded.is_ok());
  auto task = classify_task(dir, &loaded.value(), 30);  // labels: 10 of "1", 20 of "0"
  const std::vector<int> labels = task->labels();
  std::vector<size_t> train = k_shot_indices(*task, 0, 0), val;
  REQUIRE(carve_validation(*task, 3, 9, &train, &val).is_ok());
  REQUIRE(val.size() == 6);
  CHECK(train.size() == 24);
  int ones = 0;
  for (size_t i : val) ones += labels[i];
  CHECK(ones == 3);
  std::set<size_t> all(train.begin(), train.end());
  for (size_t i : val) CHECK(all.insert(i).second);  // disjoint
  CHECK(all.size() == 30);
  CHECK(std::is_sorted(val.begin(), val.end()));
  // The same seed draws the same split whatever order the sample came in; another seed another one.
  std::vector<size_t> again = k_shot_indices(*task, 0, 0), val2, other = k_shot_indices(*task, 0, 0), val3;
  std::reverse(again.begin(), again.end());
  REQUIRE(carve_validation(*task, 3, 9, &again, &val2).is_ok());
  CHECK(val2 == val);
  CHECK(again == train);
  REQUIRE(carve_validation(*task, 3, 10, &other, &val3).is_ok());
  CHECK(val3 != val);
  // A label that would keep nothing to train on is refused, and the sample is left as it was.
  std::vector<size_t> small = k_shot_indices(*task, 0, 0), none;
  auto refused = carve_validation(*task, 10, 9, &small, &none);
  REQUIRE_FALSE(refused.is_ok());
  CHECK(refused.message().find("label 1 has 10") != std::string::npos);
  CHECK(small.size() == 30);
  CHECK(none.empty());
}

TEST_CASE("a run with validation ends with the weights of its best validated step", "[client][validation][e2e]") {
  const std::string dir = test::temp_dir("");
  test::write_toy_model_dir(dir, 29);
  test::write_lines(dir + "/train.txt", sentences());
  auto r = run_finetune(request(dir, dir + "/run", 12, 3e-2f));
  REQUIRE(r.is_ok());
  CHECK(r->steps_done == 12);
  CHECK_FALSE(r->early_stopped);
  // The metrics: a validation at 0, 3, …, 12 on 4 held-out sentences; the best is the lowest loss.
  int best = -1;
  double best_loss = 0;
  std::vector<int> steps;
  for (const auto& m : metrics(dir + "/run")) {
    if (!m.contains("validation_loss")) continue;
    steps.push_back(m["step"]);
    CHECK(m["validation_examples"] == 4);
    const double loss = m["validation_loss"];
    if (best < 0 || loss < best_loss) {
      best = m["step"];
      best_loss = loss;
    }
  }
  CHECK(steps == std::vector<int>{0, 3, 6, 9, 12});
  CHECK(r->best_step == best);
  CHECK(r->best_validation_loss == Approx(best_loss));
  INFO("best step " << best);
  CHECK((best > 0 && best < 12));  // an intermediate step: neither the base nor the log's end
  // best.safetensors is the base model with the log's first `best` steps replayed, byte for byte.
  auto run = RunDir::open(dir + "/run");
  REQUIRE(run.is_ok());
  auto base = load_model(dir);
  REQUIRE(base.is_ok());
  REQUIRE(base->model->weights().make_trainable(NamePatterns("*")).is_ok());
  auto tensors = base->model->weights().trainable_tensors();
  replay_steps(nullptr, Distribution::kRademacher, run->steps(), 0, static_cast<size_t>(best), tensors);
  const auto kept = tensor_bytes(dir + "/run/best.safetensors");
  for (const auto& t : tensors) {
    INFO(t.name);
    REQUIRE(kept.count(t.name));
    CHECK(std::memcmp(kept.at(t.name).data(), t.data, t.numel * 4) == 0);
  }
  // The run's result, as export and generate load it, is that step; the snapshot stays at the log's end.
  run = RunDir();
  auto result = load_run_model(dir + "/run");
  REQUIRE(result.is_ok());
  for (const Weight* w : result->model->weights().trainable())
    CHECK(std::memcmp(kept.at(w->name).data(), w->data, w->numel() * 4) == 0);
  CHECK(tensor_bytes(dir + "/run/snapshot.safetensors") != kept);
  // A best.safetensors from beyond the log (a hand-edited or foreign file) is refused, not trusted.
  {
    auto rd = RunDir::open(dir + "/run");
    REQUIRE(rd.is_ok());
    REQUIRE(rd->write_best(99, 0.1, *result->model).is_ok());
  }
  auto ahead = load_run_model(dir + "/run");
  REQUIRE_FALSE(ahead.is_ok());
  CHECK(ahead.status().message().find("beyond the log") != std::string::npos);
}

TEST_CASE("patience stops a run whose validation loss stops improving, and resume keeps the best", "[client][validation][e2e]") {
  const std::string dir = test::temp_dir("");
  test::write_toy_model_dir(dir, 31);
  test::write_lines(dir + "/train.txt", sentences());
  // lr 0: the weights never move, so no validation beats step 0's loss (a tie is not an improvement).
  auto req = request(dir, dir + "/flat", 30, 0.0f);
  req.spec.validation.patience = 2;
  auto r = run_finetune(req);
  REQUIRE(r.is_ok());
  CHECK(r->early_stopped);
  CHECK(r->steps_done == 6);  // validations at 3 and 6 without improvement
  CHECK(r->best_step == 0);
  // Resuming continues the run (the log is consistent at step 6) and still competes with step 0's loss.
  FinetuneRequest resume;
  resume.out_dir = dir + "/flat";
  resume.resume = true;
  resume.threads = 2;
  auto again = run_finetune(resume);
  REQUIRE(again.is_ok());
  CHECK(again->best_step == 0);
  CHECK(again->steps_done == 12);
  // Refused settings: nothing left to train on.
  auto greedy = request(dir, dir + "/greedy", 4, 1e-3f);
  greedy.spec.validation.examples = 16;
  auto refused = run_finetune(greedy);
  REQUIRE_FALSE(refused.is_ok());
  CHECK(refused.status().message().find("leaves nothing to train on") != std::string::npos);
}
