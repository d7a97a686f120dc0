// A round's training settings come from the server; a device refuses the ones that cannot drive a step
// (a zero or huge batch, lr / eps that are negative, NaN or past float32, a round number past the step
// index) with an error naming the setting, and leaves its weights as they were.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "model_fixtures.h"
#include "pocketllm/client/loader.h"
#include "pocketllm/client/lora.h"
#include "pocketllm/client/model.h"
#include "pocketllm/federation/round_participant.h"

using namespace pocketllm;

namespace {

RoundInfo good_round() {
  RoundInfo r;
  r.task = "t";
  r.round = 3;
  r.seeds = {0x11, 0x22};
  r.lr = 1e-3;
  r.eps = 1e-3;
  r.batch_size = 2;
  return r;
}

}  // namespace

TEST_CASE("federation: a device refuses a round whose settings cannot drive a step, naming the setting", "[federation]") {
  const std::string dir = test::temp_dir("");
  test::write_toy_model_dir(dir, 61);
  auto loaded = load_model(dir, LoadOptions::with_tokenizer());
  REQUIRE(loaded.is_ok());
  LanguageModel& model = *loaded->model;
  REQUIRE(select_trainable(model, "norms", LoraConfig{}).is_ok());
  auto task = test::toy_sentence_task("lm", *loaded->tokenizer, model);
  const std::vector<size_t> examples = {0, 1, 2, 3, 4, 5, 6, 7};
  ThreadPool pool(1);

  auto values = [&] {
    std::vector<float> all;
    for (const Weight* w : model.weights().trainable()) {
      size_t n = 1;
      for (int64_t d : w->shape) n *= static_cast<size_t>(d);
      all.insert(all.end(), w->mutable_f32, w->mutable_f32 + n);
    }
    return all;
  };
  const std::vector<float> before = values();
  REQUIRE_FALSE(before.empty());
  auto unchanged = [&] { return values() == before; };

  const std::vector<std::pair<const char*, void (*)(RoundInfo*)>> bad = {
      {"batch_size", [](RoundInfo* r) { r->batch_size = 0; }},
      {"batch_size", [](RoundInfo* r) { r->batch_size = 3000000000u; }},
      {"lr", [](RoundInfo* r) { r->lr = -1e-3; }},
      {"lr", [](RoundInfo* r) { r->lr = std::numeric_limits<double>::quiet_NaN(); }},
      {"lr", [](RoundInfo* r) { r->lr = 1e300; }},
      {"eps", [](RoundInfo* r) { r->eps = 0; }},
      {"eps", [](RoundInfo* r) { r->eps = 1e300; }},
      {"round number", [](RoundInfo* r) { r->round = uint64_t{1} << 40; }},
  };
  for (const auto& [field, set] : bad) {
    RoundInfo r = good_round();
    set(&r);
    INFO(field);
    auto out = run_local_round(model, *task, examples, r, 5, &pool);
    REQUIRE_FALSE(out.is_ok());
    CHECK(out.status().code() == StatusCode::kInvalidArgument);
    CHECK(out.status().message().find(field) != std::string::npos);
    CHECK(unchanged());
  }
  // The same round with sane settings trains: two scalars, and the weights move.
  auto ok = run_local_round(model, *task, examples, good_round(), 5, &pool);
  REQUIRE(ok.is_ok());
  CHECK(ok->coeffs.size() == 2);
  CHECK_FALSE(unchanged());
}
