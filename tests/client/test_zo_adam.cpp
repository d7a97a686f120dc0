// Adam over a full set of directions (--optimizer adam): the gradient fit, the entries that carry Adam's
// step, the step seeds past direction 255, and a run that replays and resumes byte for byte.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <set>

#include "model_fixtures.h"
#include "run_fixtures.h"
#include "pocketllm/client/finetune.h"
#include "pocketllm/client/zo_adam.h"
#include "pocketllm/common/seeds.h"
#include <nlohmann/json.hpp>

using namespace pocketllm;
using nlohmann::json;
using test::file_text;
using test::log_lines;

namespace {

// Two small tensors, the second with a step scale and two trainable spans: 5 + 3 + 2 = 10 coordinates.
struct Toy {
  std::vector<float> a = std::vector<float>(5, 0.5f), b = std::vector<float>(9, -1.0f);
  std::vector<NamedTensor> tensors() {
    NamedTensor tb("layers.0.b", b.data(), b.size(), 2.0f);
    tb.spans = {{1, 3}, {6, 2}};
    return {NamedTensor("layers.0.a", a.data(), a.size()), tb};
  }
};

std::vector<uint64_t> seeds_of(int t, int k) {
  std::vector<uint64_t> s;
  for (int i = 0; i < k; ++i) s.push_back(step_seed(0xada, static_cast<uint64_t>(t), static_cast<uint32_t>(i)));
  return s;
}

// u_k = s * z(seed_k) over the trainable elements, computed here from generate_z directly.
std::vector<std::vector<double>> directions(Distribution dist, const std::vector<uint64_t>& seeds, std::vector<NamedTensor> ts) {
  std::vector<std::vector<double>> u;
  for (uint64_t seed : seeds) {
    std::vector<double> row;
    for (const auto& t : ts)
      for_each_span(t, [&](size_t begin, size_t n) {
        std::vector<float> z(n);
        generate_z(dist, seed, tensor_tag(t.name), begin, n, z.data());
        for (float v : z) row.push_back(double{t.scale} * v);
      });
    u.push_back(row);
  }
  return u;
}

FinetuneRequest adam_request(const std::string& model_dir, const std::string& out, int steps) {
  FinetuneRequest r = test::toy_lm_request(model_dir, out, steps);
  r.spec.train.seed = 0xada;
  r.spec.train.data_seed = 2;
  r.spec.train.optimizer = Optimizer::kAdam;
  r.spec.train.n_spsa = 0;  // the default for the set
  r.spec.train.lr = 1e-2f;
  r.spec.train.schedule = LrSchedule::kCosine;
  r.spec.trainable = "norms";
  return r;
}

}  // namespace

TEST_CASE("step seeds: directions past 255 get seeds of their own, 0..255 keep docs/training.md's first form", "[client][adam]") {
  std::set<uint64_t> seen;
  for (uint64_t t = 0; t < 6; ++t)
    for (uint32_t k = 0; k < 1100; ++k) seen.insert(step_seed(0x5eed, t, k));
  CHECK(seen.size() == 6u * 1100u);  // the (t << 8) | k form alone repeats 1 100 - 256 of them from step 1 on
  for (uint64_t t : {0ull, 1ull, 77ull})
    for (uint32_t k : {0u, 1u, 255u}) CHECK(step_seed(0x5eed, t, k) == splitmix64(0x5eedull ^ splitmix64((t << 8) | k)));
  CHECK(step_seed(0x5eed, 3, 256) == splitmix64(0x5eedull ^ splitmix64((uint64_t{1} << 63) | (3ull << 16) | 256)));
}

TEST_CASE("adam's directions give back every coordinate of a gradient, whatever the losses share", "[client][adam]") {
  const Distribution dist = GENERATE(Distribution::kRademacher, Distribution::kGaussian);
  Toy toy;
  const auto ts = toy.tensors();
  REQUIRE(trainable_coordinates(ts) == 10);
  const std::vector<double> g_true = {0.3, -0.2, 0.05, 0.0, 1.5, -0.7, 0.01, 0.2, -0.03, 0.9};
  const auto seeds = seeds_of(4, default_adam_directions(10));
  CHECK(seeds.size() == 14);  // 1.25 * 11 = 13.75, rounded up to an even count
  const auto u = directions(dist, seeds, ts);
  const double eps = 1e-3;
  std::vector<double> losses;
  for (const auto& row : u) {  // L_k = L0 + eps u.g + a second-order term every direction shares
    double dot = 0;
    for (size_t i = 0; i < row.size(); ++i) dot += row[i] * g_true[i];
    losses.push_back(0.7 + eps * dot + 0.5 * eps * eps * 40.0);
  }
  DirectionBasis basis;
  basis.build(dist, seeds, ts);
  REQUIRE(basis.directions() == 14);
  REQUIRE(basis.coordinates() == 10);
  std::vector<double> g;
  REQUIRE(basis.gradient(losses, eps, &g));
  REQUIRE(g.size() == 10);
  for (size_t i = 0; i < g.size(); ++i) CHECK(g[i] == Approx(g_true[i]).margin(1e-7));

  // The coefficients write a step in the same directions: replaying the entries moves theta by -delta.
  const std::vector<double> delta = {1e-2, -1e-2, 3e-3, 0.0, 1e-2, -5e-3, 1e-2, 1e-2, -1e-2, 2e-3};
  std::vector<double> c;
  REQUIRE(basis.coefficients(delta, &c));
  REQUIRE(c.size() == 14);
  std::vector<UpdateEntry> entries;
  for (size_t k = 0; k < c.size(); ++k) entries.push_back({seeds[k], static_cast<float>(c[k])});
  const Toy before;
  replay_entries(nullptr, dist, entries.data(), entries.size(), ts);
  const std::vector<std::pair<const float*, size_t>> spans = {{toy.a.data(), 0}, {toy.a.data(), 1}, {toy.a.data(), 2}, {toy.a.data(), 3},
                                                              {toy.a.data(), 4}, {toy.b.data(), 1}, {toy.b.data(), 2}, {toy.b.data(), 3},
                                                              {toy.b.data(), 6}, {toy.b.data(), 7}};
  for (size_t i = 0; i < spans.size(); ++i) {
    const bool in_a = spans[i].first == toy.a.data();
    const double start = in_a ? before.a[spans[i].second] : before.b[spans[i].second];
    CHECK(spans[i].first[spans[i].second] - start == Approx(-delta[i]).margin(2e-6));
  }
  for (size_t i : {0, 4, 5, 8}) CHECK(toy.b[i] == -1.0f);  // outside the spans nothing moves

  // Too few directions, or a loss that is not finite, is refused rather than guessed.
  DirectionBasis few;
  few.build(dist, seeds_of(4, 10), ts);
  CHECK_FALSE(few.gradient(std::vector<double>(10, 0.7), eps, &g));
  losses[3] = std::nan("");
  CHECK_FALSE(basis.gradient(losses, eps, &g));
}

TEST_CASE("adam's moments: the documented update, bias-corrected, on float32 gradients", "[client][adam]") {
  AdamMoments adam(0.9, 0.999, 1e-8);
  std::vector<double> delta;
  adam.update({0.5, -2.0, 0.0}, 0.01, &delta);
  CHECK(delta[0] == Approx(0.01).epsilon(1e-6));  // the first step is lr * sign(g)
  CHECK(delta[1] == Approx(-0.01).epsilon(1e-6));
  CHECK(delta[2] == 0.0);
  adam.update({0.1, -2.0, 1.0}, 0.02, &delta);
  // m = 0.9 m + 0.1 g, v = 0.999 v + 0.001 g^2, hats divided by 1 - beta^2.
  const double m0 = 0.9 * 0.05 + 0.1 * double(0.1f), v0 = 0.999 * 0.00025 + 0.001 * double(0.1f) * double(0.1f);
  CHECK(delta[0] == Approx(0.02 * (m0 / (1 - 0.81)) / (std::sqrt(v0 / (1 - 0.998001)) + 1e-8)).epsilon(1e-12));
  CHECK(adam.updates() == 2);
}

TEST_CASE("an adam run moves each norm coordinate by about lr at its first step, replays and resumes byte for byte",
          "[client][adam][e2e]") {
  const std::string dir = test::temp_dir("");
  test::write_toy_model_dir(dir, 51);
  test::write_lines(dir + "/train.txt", {"the cat", "a cat at the bed", "he had a cat", "the hat", "the end", "a bee"});
  const int steps = 6;
  REQUIRE(run_finetune(adam_request(dir, dir + "/run", steps)).is_ok());
  auto run = RunDir::open(dir + "/run");
  REQUIRE(run.is_ok());
  CHECK(run->spec().train.optimizer == Optimizer::kAdam);
  auto m = load_model(dir);
  REQUIRE(m.is_ok());
  REQUIRE(m->model->weights().make_trainable(NamePatterns(run->spec().trainable)).is_ok());
  auto tensors = m->model->weights().trainable_tensors();
  const size_t d = trainable_coordinates(tensors);
  CHECK(run->spec().train.n_spsa == default_adam_directions(d));
  REQUIRE(run->steps().size() == static_cast<size_t>(steps));
  CHECK(run->steps()[0].entries.size() == static_cast<size_t>(default_adam_directions(d)));

  // Step 0 alone: Adam's first step is lr_0 * sign(g) on every coordinate (the entries carry it).
  std::map<std::string, std::vector<float>> start;
  for (const auto& t : tensors) start[t.name].assign(t.data, t.data + t.numel);
  const auto& first = run->steps()[0].entries;
  replay_entries(nullptr, Distribution::kRademacher, first.data(), first.size(), tensors);
  const double lr0 = 1e-2;
  size_t moved = 0;
  for (const auto& t : tensors)
    for (size_t i = 0; i < t.numel; ++i) {
      const double step = std::fabs(double{t.data[i]} - start[t.name][i]);
      CHECK(step == Approx(lr0).epsilon(2e-3));
      moved += step > 0.5 * lr0;
    }
  CHECK(moved == d);

  // All entries replay to the run's bytes; a stopped run resumed gives the same log and bytes.
  for (const auto& t : tensors) std::copy(start[t.name].begin(), start[t.name].end(), t.data);
  replay_log(nullptr, Distribution::kRademacher, run->update_log(), tensors);
  std::map<std::string, std::string> replayed;
  for (const auto& t : tensors) replayed[t.name] = std::string(reinterpret_cast<const char*>(t.data), t.numel * 4);
  const auto trained = test::tensor_bytes(dir + "/run/snapshot.safetensors");
  CHECK(replayed == trained);
  auto cut = adam_request(dir, dir + "/cut", steps);
  REQUIRE(run_finetune(cut, [](const StepProgress& p) { return p.step < 3; }).is_ok());
  REQUIRE(log_lines(dir + "/cut").size() < log_lines(dir + "/run").size());
  cut.resume = true;
  REQUIRE(run_finetune(cut).is_ok());
  CHECK(file_text(dir + "/cut/log.jsonl") == file_text(dir + "/run/log.jsonl"));
  CHECK(test::tensor_bytes(dir + "/cut/snapshot.safetensors") == trained);
}

TEST_CASE("decay to the start: step 0 as without it, later steps pulled back, replay and resume byte for byte",
          "[client][adam][e2e]") {
  const std::string dir = test::temp_dir("");
  test::write_toy_model_dir(dir, 53);
  test::write_lines(dir + "/train.txt", {"the cat", "a cat at the bed", "he had a cat", "the hat", "the end", "a bee"});
  const int steps = 8;
  REQUIRE(run_finetune(adam_request(dir, dir + "/free", steps)).is_ok());
  auto pulled = adam_request(dir, dir + "/pulled", steps);
  pulled.spec.train.decay_to_start = 30.0f;
  REQUIRE(run_finetune(pulled).is_ok());
  auto free_run = RunDir::open(dir + "/free"), pulled_run = RunDir::open(dir + "/pulled");
  REQUIRE(free_run.is_ok());
  REQUIRE(pulled_run.is_ok());
  CHECK(pulled_run->spec().train.decay_to_start == 30.0f);  // kept in the run's spec
  CHECK(free_run->spec().train.decay_to_start == 0.0f);
  // Nothing has moved before step 0: the same entries. From step 1 on the pull changes them.
  REQUIRE(pulled_run->steps().size() == static_cast<size_t>(steps));
  CHECK(pulled_run->steps()[0].entries == free_run->steps()[0].entries);
  CHECK(pulled_run->steps()[1].entries != free_run->steps()[1].entries);

  // The pull keeps the weights nearer the start: the summed |theta - theta_0| after 8 steps is smaller
  // (0.40 against 3.74 when written; a pull with the wrong sign gave 4.92).
  const std::string trainable = pulled_run->spec().trainable;
  auto distance = [&](const std::string& run_dir) {
    auto base = load_model(dir);
    REQUIRE(base.is_ok());
    REQUIRE(base->model->weights().make_trainable(NamePatterns(trainable)).is_ok());
    const auto trained = test::tensor_bytes(run_dir + "/snapshot.safetensors");
    double sum = 0;
    for (const auto& t : base->model->weights().trainable_tensors()) {
      const std::string& bytes = trained.at(t.name);
      REQUIRE(bytes.size() == t.numel * 4);
      const auto* now = reinterpret_cast<const float*>(bytes.data());
      for (size_t i = 0; i < t.numel; ++i) sum += std::fabs(double{now[i]} - t.data[i]);
    }
    return sum;
  };
  const double free_distance = distance(dir + "/free"), pulled_distance = distance(dir + "/pulled");
  INFO("free " << free_distance << " pulled " << pulled_distance);
  CHECK(pulled_distance < 0.9 * free_distance);

  // A stopped run resumes to the same log and bytes (the displacement is rebuilt from the logged losses).
  auto cut = pulled;
  cut.out_dir = dir + "/cut";
  REQUIRE(run_finetune(cut, [](const StepProgress& p) { return p.step < 4; }).is_ok());
  REQUIRE(log_lines(dir + "/cut").size() < log_lines(dir + "/pulled").size());
  cut.resume = true;
  REQUIRE(run_finetune(cut).is_ok());
  CHECK(file_text(dir + "/cut/log.jsonl") == file_text(dir + "/pulled/log.jsonl"));
  CHECK(test::tensor_bytes(dir + "/cut/snapshot.safetensors") == test::tensor_bytes(dir + "/pulled/snapshot.safetensors"));
}

TEST_CASE("an adam run refuses sets it cannot fit, too few directions and a bad optimizer in its spec", "[client][adam]") {
  const std::string dir = test::temp_dir("");
  test::write_toy_model_dir(dir, 52);
  test::write_lines(dir + "/train.txt", {"the cat", "a cat at the bed", "he had a cat", "the hat"});
  auto all = adam_request(dir, dir + "/all", 2);
  all.spec.trainable = "all";
  auto r = run_finetune(all);
  REQUIRE_FALSE(r.is_ok());
  CHECK_THAT(r.status().message(), Catch::Contains("at most 4096 trainable elements"));
  auto few = adam_request(dir, dir + "/few", 2);
  few.spec.train.n_spsa = 100;  // the toy's norms have 120 elements
  r = run_finetune(few);
  REQUIRE_FALSE(r.is_ok());
  CHECK_THAT(r.status().message(), Catch::Contains("too few"));
  auto with_momentum = adam_request(dir, dir + "/m", 2);
  with_momentum.spec.train.momentum = 0.9f;
  with_momentum.spec.train.momentum_window = 4;
  CHECK_FALSE(run_finetune(with_momentum).is_ok());

  REQUIRE(run_finetune(adam_request(dir, dir + "/ok", 1)).is_ok());
  const json spec = json::parse(file_text(dir + "/ok/spec.json"));
  CHECK(spec.at("optimizer").at("name") == "adam");
  for (const json& bad : {json("adam"), json({{"name", "lion"}}), json({{"name", "adam"}, {"beta1", 1.5}}), json({{"name", "adam"}, {"eps", 0}})}) {
    json s = spec;
    s["optimizer"] = bad;
    CHECK_FALSE(RunSpec::from_json(s, "spec.json").is_ok());
  }
  CHECK(RunSpec::from_json(spec, "spec.json").is_ok());
}
