// The ZO scalar is a correct directional derivative: against grad(L) . z from PyTorch float64 autograd
// (tests/fixtures/make_zo_directional_fixture.py), on the fixture's small random Llama.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_paths.h"
#include "pocketllm/client/loader.h"
#include "pocketllm/common/update_log.h"

using namespace pocketllm;

namespace {

struct Fixture {
  LoadedModel loaded;
  TokenBatch batch;
  std::vector<int32_t> targets;
  nlohmann::json cases;
  double loss = 0;
};

Fixture load_fixture() {
  const std::string dir = test::fixtures_dir() + "/zo_directional";
  Fixture f;
  auto l = load_model(dir);
  REQUIRE(l.is_ok());
  f.loaded = std::move(l.value());
  REQUIRE(f.loaded.model->weights().make_trainable(NamePatterns("*")).is_ok());
  std::ifstream in(dir + "/cases.json");
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = nlohmann::json::parse(ss.str());
  std::vector<std::vector<int32_t>> seqs = j["sequences"].get<std::vector<std::vector<int32_t>>>();
  f.batch = TokenBatch::from_sequences(seqs);
  f.targets.assign(f.batch.tokens.size(), -1);
  for (size_t b = 0; b < seqs.size(); ++b)
    for (size_t t = 0; t + 1 < seqs[b].size(); ++t) f.targets[b * f.batch.seq_len + t] = seqs[b][t + 1];
  f.cases = j["cases"];
  f.loss = j["loss"];
  return f;
}

double zo_scalar(Fixture& f, uint64_t seed, float eps) {
  auto plus = f.loaded.model->token_loss(nullptr, f.batch, f.targets, Perturbation{true, Distribution::kRademacher, seed, eps});
  auto minus = f.loaded.model->token_loss(nullptr, f.batch, f.targets, Perturbation{true, Distribution::kRademacher, seed, -eps});
  REQUIRE(plus.is_ok());
  REQUIRE(minus.is_ok());
  return (plus->mean() - minus->mean()) / (2.0 * eps);
}

}  // namespace

TEST_CASE("the loss matches an independent float64 PyTorch implementation", "[client][zo][reference]") {
  Fixture f = load_fixture();
  auto l = f.loaded.model->token_loss(nullptr, f.batch, f.targets, Perturbation{});
  REQUIRE(l.is_ok());
  CHECK(l->mean() == Approx(f.loss).epsilon(1e-5));
}

TEST_CASE("(L(theta+eps z) - L(theta-eps z)) / 2eps agrees with grad L . z", "[client][zo][reference]") {
  Fixture f = load_fixture();
  std::vector<double> rel;
  for (const auto& c : f.cases) {
    uint64_t seed;
    REQUIRE(seed_from_hex(c["seed"].get<std::string>(), &seed));
    const double want = c["directional_derivative"];
    const double got = zo_scalar(f, seed, 1e-3f);
    rel.push_back(std::fabs(got - want) / std::fabs(want));
    INFO("seed " << c["seed"] << ": ZO " << got << " vs autograd " << want);
    CHECK(rel.back() < 0.05);
  }
  REQUIRE(rel.size() >= 10);
  std::sort(rel.begin(), rel.end());
  const double median = rel[rel.size() / 2];
  INFO("median relative error " << median);
  CHECK(median < 0.01);

  // Truncation error of the central difference is O(eps^2): halving eps quarters it, as long as the
  // error is well above float32 rounding (large eps here).
  uint64_t seed;
  REQUIRE(seed_from_hex(f.cases[0]["seed"].get<std::string>(), &seed));
  const double want = f.cases[0]["directional_derivative"];
  const double e1 = std::fabs(zo_scalar(f, seed, 0.02f) - want), e2 = std::fabs(zo_scalar(f, seed, 0.01f) - want),
               e3 = std::fabs(zo_scalar(f, seed, 0.005f) - want);
  INFO("errors at eps 0.02, 0.01, 0.005: " << e1 << ", " << e2 << ", " << e3);
  CHECK(e1 / e2 > 3.0);
  CHECK(e1 / e2 < 5.5);
  CHECK(e2 / e3 > 3.0);
  CHECK(e2 / e3 < 5.5);
}
