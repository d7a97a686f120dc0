// Momentum on the scalar sequence (--momentum): older directions re-applied as plain logged entries.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>

#include "model_fixtures.h"
#include "run_fixtures.h"
#include "pocketllm/client/finetune.h"
#include <nlohmann/json.hpp>

using namespace pocketllm;
using nlohmann::json;
using test::file_text;
using test::log_lines;

namespace {

constexpr float kBeta = 0.5f;
constexpr int kWindow = 3;
constexpr int kDirections = 2;

FinetuneRequest request(const std::string& model_dir, const std::string& out, int steps, float momentum) {
  FinetuneRequest r = test::toy_lm_request(model_dir, out, steps);
  r.spec.train.seed = 0x4d0e;
  r.spec.train.data_seed = 3;
  r.spec.train.n_spsa = kDirections;
  r.spec.train.schedule = LrSchedule::kCosine;
  r.spec.train.momentum = momentum;
  r.spec.train.momentum_window = momentum > 0 ? kWindow : 0;
  r.spec.trainable = "norms";
  return r;
}

}  // namespace

TEST_CASE("momentum window: the smallest W with B^W <= 0.01", "[client][momentum]") {
  CHECK(default_momentum_window(0.9f) == 44);  // 0.9^43 = 0.0108, 0.9^44 = 0.0097
  CHECK(default_momentum_window(0.5f) == 7);   // 0.5^6 = 0.0156, 0.5^7 = 0.0078
  CHECK(default_momentum_window(0.0f) == 0);
  CHECK(default_momentum_window(0.999f) == 256);  // capped
}

TEST_CASE("momentum re-applies the last W steps' directions with the documented weights, as plain log entries",
          "[client][momentum][e2e]") {
  const std::string dir = test::temp_dir("");
  test::write_toy_model_dir(dir, 42);
  test::write_lines(dir + "/train.txt", {"the cat", "a cat at the bed", "he had a cat", "the hat", "the end", "a bee"});
  const int steps = 8;
  REQUIRE(run_finetune(request(dir, dir + "/run", steps, kBeta)).is_ok());

  // Recompute every coefficient from the logged scalars g, lr and seeds by docs/training.md "Momentum".
  std::map<int, std::vector<json>> by_step;
  for (const json& j : log_lines(dir + "/run")) by_step[j.at("step").get<int>()].push_back(j);
  REQUIRE(by_step.size() == static_cast<size_t>(steps));
  for (int t = 0; t < steps; ++t) {
    const auto& lines = by_step[t];
    const int older = std::min(kWindow, t);
    REQUIRE(lines.size() == static_cast<size_t>(kDirections * (1 + older)));
    double sum = 0;
    for (int j = 0; j <= older; ++j) sum += std::pow(double{kBeta}, j);
    const double lr = lines[0].at("lr").get<double>();
    for (size_t i = 0; i < lines.size(); ++i) {
      const json& e = lines[i];
      CHECK(e.at("entries").get<size_t>() == lines.size());
      CHECK(e.at("k").get<size_t>() == i);
      const int from = i < kDirections ? t : e.at("from").get<int>();
      const int k = static_cast<int>(i % kDirections);
      // Entries of step `from`, newest first after the step's own.
      CHECK(from == t - static_cast<int>(i / kDirections));
      const json& own = by_step[from][static_cast<size_t>(k)];
      CHECK(e.at("seed") == own.at("seed"));
      const double g = own.at("g").get<double>();
      const double expected = lr * std::pow(double{kBeta}, t - from) / sum * g / kDirections;
      CHECK(e.at("coeff").get<double>() == static_cast<double>(static_cast<float>(expected)));
      if (i < kDirections) {  // the step's own scalar is the two-sided difference of its logged losses
        const double diff = (e.at("loss_plus").get<double>() - e.at("loss_minus").get<double>()) / (2.0 * 1e-3f);
        CHECK(g == Approx(diff).epsilon(1e-9));
      }
    }
  }

  // Replaying the log's entries gives the run's bytes; resuming a stopped run gives the same log and bytes.
  auto run = RunDir::open(dir + "/run");
  REQUIRE(run.is_ok());
  CHECK(run->spec().train.momentum == kBeta);
  CHECK(run->spec().train.momentum_window == kWindow);
  const auto trained = test::tensor_bytes(dir + "/run/snapshot.safetensors");
  auto m = load_model(dir);
  REQUIRE(m.is_ok());
  REQUIRE(m->model->weights().make_trainable(NamePatterns(run->spec().trainable)).is_ok());
  auto tensors = m->model->weights().trainable_tensors();
  replay_log(nullptr, Distribution::kRademacher, run->update_log(), tensors);
  std::map<std::string, std::string> replayed;
  for (const auto& t : tensors) replayed[t.name] = std::string(reinterpret_cast<const char*>(t.data), t.numel * 4);
  CHECK(replayed == trained);

  auto cut = request(dir, dir + "/cut", steps, kBeta);
  REQUIRE(run_finetune(cut, [](const StepProgress& p) { return p.step < 5; }).is_ok());
  REQUIRE(log_lines(dir + "/cut").size() < log_lines(dir + "/run").size());
  cut.resume = true;
  REQUIRE(run_finetune(cut).is_ok());
  CHECK(file_text(dir + "/cut/log.jsonl") == file_text(dir + "/run/log.jsonl"));
  CHECK(test::tensor_bytes(dir + "/cut/snapshot.safetensors") == trained);

  // Without momentum the same seeds give other weights (the option does something).
  REQUIRE(run_finetune(request(dir, dir + "/plain", steps, 0.0f)).is_ok());
  CHECK(test::tensor_bytes(dir + "/plain/snapshot.safetensors") != trained);
  CHECK(log_lines(dir + "/plain").size() == static_cast<size_t>(steps * kDirections));
  CHECK_FALSE(log_lines(dir + "/plain")[0].contains("g"));
}

TEST_CASE("a momentum run refuses a bad spec and a log without its scalars", "[client][momentum]") {
  const std::string dir = test::temp_dir("");
  test::write_toy_model_dir(dir, 43);
  test::write_lines(dir + "/train.txt", {"the cat", "a cat at the bed", "he had a cat", "the hat"});
  auto first = request(dir, dir + "/run", 6, kBeta);
  REQUIRE(run_finetune(first, [](const StepProgress& p) { return p.step < 3; }).is_ok());  // stopped early
  const json spec = json::parse(file_text(dir + "/run/spec.json"));
  for (const auto& [key, value] : std::vector<std::pair<std::string, json>>{
           {"momentum", 1.0}, {"momentum", -0.1}, {"momentum", "high"}, {"momentum_window", 0}, {"momentum_window", 300}}) {
    json bad = spec;
    bad[key] = value;
    CHECK_FALSE(RunSpec::from_json(bad, "spec.json").is_ok());
  }
  CHECK(RunSpec::from_json(spec, "spec.json").is_ok());

  // Strip the scalars g from the log: the run can no longer resume, and says why.
  std::string stripped;
  for (json j : log_lines(dir + "/run")) {
    j.erase("g");
    stripped += j.dump() + "\n";
  }
  std::ofstream(dir + "/run/log.jsonl", std::ios::binary | std::ios::trunc) << stripped;
  first.resume = true;
  auto r = run_finetune(first);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message().find("projected gradients") != std::string::npos);

  // A line that claims fewer entries than the step's directions is a corrupt log.
  std::string lines = file_text(dir + "/run/log.jsonl");
  const size_t at = lines.find("\"entries\":");
  REQUIRE(at != std::string::npos);
  lines.replace(at, lines.find(',', at) - at, "\"entries\":1");
  std::ofstream(dir + "/run/log.jsonl", std::ios::binary | std::ios::trunc) << lines;
  CHECK_FALSE(RunDir::open(dir + "/run").is_ok());
}
