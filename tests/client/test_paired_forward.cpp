// The two passes of a ZO step at once (client/paired_forward.h): a model's twin computes the model's
// bits over the same weights, and the concurrent pairing gives the trainer the records of the passes run
// one after the other, on any number of threads; errors, exceptions and cancellation cross threads.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "model_fixtures.h"
#include "pocketllm/client/loader.h"
#include "pocketllm/client/lora.h"
#include "pocketllm/client/memory_estimate.h"
#include "pocketllm/client/trainer.h"
#include "pocketllm/common/cancel.h"
#include "test_paths.h"

using namespace pocketllm;

namespace {

bool same_bytes(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Every step's losses and entries, bytes compared.
std::string records_of(const std::string& model_dir, const std::string& kind, int threads, PairMode pair, bool lora,
                       std::string* mode) {
  auto loaded = load_model(model_dir, LoadOptions::with_tokenizer());
  REQUIRE(loaded.is_ok());
  LoraConfig lc;
  if (lora) {
    lc.rank = 2;
    lc.targets = "q_proj,v_proj";
    lc.init_seed = 5;
  }
  REQUIRE(select_trainable(*loaded->model, lora ? "norms" : "*", lc).is_ok());
  auto task = test::toy_sentence_task(kind, *loaded->tokenizer, *loaded->model);
  TrainOptions o;
  o.batch_size = 3;
  o.n_spsa = 2;
  o.lr = 1e-2f;
  o.pair = pair;
  ThreadPool pool(threads);
  ZoTrainer trainer(*loaded->model, *task, k_shot_indices(*task, 0, 0), o, &pool);
  std::string out;
  for (int t = 0; t < 6; ++t) {
    auto rec = trainer.step(t);
    REQUIRE(rec.is_ok());
    for (double l : rec->loss_plus) out.append(reinterpret_cast<const char*>(&l), sizeof l);
    for (double l : rec->loss_minus) out.append(reinterpret_cast<const char*>(&l), sizeof l);
    for (const auto& e : rec->entries) out.append(reinterpret_cast<const char*>(&e.coeff), sizeof e.coeff);
    trainer.apply(rec.value());
  }
  *mode = trainer.pair_mode();
  return out;
}

}  // namespace

TEST_CASE("a twin computes its model's bits over the same weights, and sees them change", "[client][pair]") {
  const std::string toy = test::temp_dir("");
  test::write_toy_model_dir(toy, 21, /*tied=*/false);
  std::vector<std::string> dirs = {toy};
  for (const char* name : {"opt", "opt_postln_proj", "gpt2", "roberta"}) dirs.push_back(test::fixtures_dir() + "/arch/" + name);
  for (const auto& dir : dirs) {
    INFO("model " << dir);
    auto loaded = load_model(dir);
    REQUIRE(loaded.is_ok());
    LanguageModel& model = *loaded->model;
    REQUIRE(model.weights().make_trainable(NamePatterns("*")).is_ok());
    auto twin = model.twin();
    REQUIRE(twin.is_ok());
    CHECK(&twin.value()->weights() == &model.weights());  // shared, not copied
    const TokenBatch batch = TokenBatch::from_sequences({{5, 9, 14, 20, 33, 40}, {7, 8, 3}}, 1);
    const Perturbation p{true, Distribution::kRademacher, 99, 1e-2f};
    const auto before = test::all_row_logits(model, batch, p);
    CHECK(same_bytes(test::all_row_logits(*twin.value(), batch, p), before));
    // An update in place (what ZoTrainer::apply does) reaches the twin: nothing was copied at twin().
    for (const Weight* w : model.weights().trainable())
      for (size_t i = 0; i < w->numel(); ++i) w->mutable_f32[i] *= 1.5f;
    const auto after = test::all_row_logits(model, batch, p);
    CHECK_FALSE(same_bytes(after, before));
    CHECK(same_bytes(test::all_row_logits(*twin.value(), batch, p), after));
  }
}

TEST_CASE("both passes at once give the trainer the records of one after the other, on 1 to 4 threads", "[client][pair]") {
  const std::string dir = test::temp_dir("");
  test::write_toy_model_dir(dir, 22);
  for (const std::string kind : {"lm", "classify"})
    for (bool lora : {false, true}) {
      INFO(kind << (lora ? " with LoRA adapters" : " on every parameter"));
      std::string mode;
      const std::string reference = records_of(dir, kind, 1, PairMode::kSequential, lora, &mode);
      CHECK(mode == "sequential: asked for");
      REQUIRE(reference.size() == 6 * 2 * (2 * sizeof(double) + sizeof(float)));
      for (int threads : {1, 2, 3, 4})
        for (PairMode pair : {PairMode::kConcurrent, PairMode::kSequential, PairMode::kAuto}) {
          INFO(threads << " threads, " << pair_mode_name(pair));
          CHECK(records_of(dir, kind, threads, pair, lora, &mode) == reference);
          const std::string split = "(the two passes on " + std::to_string(threads / 2) + " + " + std::to_string(threads - threads / 2) + " threads)";
          if (pair == PairMode::kSequential) CHECK(mode == "sequential: asked for");
          else if (threads == 1) CHECK(mode == "sequential: one thread");
          else if (pair == PairMode::kConcurrent) CHECK(mode == "concurrent: asked for " + split);
          else CHECK((mode.rfind("concurrent: the second pass's", 0) == 0 && mode.find(split) != std::string::npos));  // a toy model: KiB
        }
    }
}

TEST_CASE("a paired pass returns either side's error and rethrows its exception on the caller", "[client][pair]") {
  const std::string dir = test::temp_dir("");
  test::write_toy_model_dir(dir, 23);
  auto loaded = load_model(dir);
  REQUIRE(loaded.is_ok());
  ThreadPool pool(2);
  PairedForward pair(*loaded->model, &pool, choose_pair(*loaded->model, &pool, PairMode::kConcurrent, 4, 16));
  REQUIRE(pair.concurrent());
  const Perturbation plus{true, Distribution::kRademacher, 1, 1e-3f}, minus{true, Distribution::kRademacher, 1, -1e-3f};
  LossResult lp, lm;
  // The minus pass fails: its error comes back, whichever thread ran it.
  auto fail_minus = [](ThreadPool*, LanguageModel&, const Perturbation& p) -> Result<LossResult> {
    if (p.scale < 0) return out_of_range("minus pass failed");
    return LossResult{1.0, 1};
  };
  Status s = pair.run(fail_minus, plus, minus, &lp, &lm);
  CHECK(s.code() == StatusCode::kOutOfRange);
  CHECK(s.message() == "minus pass failed");

  // The two sides run on two threads; an exception on either reaches the caller.
  std::thread::id side_thread[2];
  auto slow_plus_throwing_minus = [&](ThreadPool*, LanguageModel&, const Perturbation& p) -> Result<LossResult> {
    side_thread[p.scale < 0] = std::this_thread::get_id();
    if (p.scale > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the minus side goes to the worker
      return LossResult{1.0, 1};
    }
    throw std::runtime_error("minus side threw");
  };
  CHECK_THROWS_WITH(pair.run(slow_plus_throwing_minus, plus, minus, &lp, &lm), "minus side threw");
  CHECK(side_thread[0] != side_thread[1]);

  // Cancellation requested on the caller's thread reaches the pass on the worker.
  std::atomic<bool> cancel{true};
  CancelScope scope(&cancel);
  auto cancellable_minus = [](ThreadPool*, LanguageModel&, const Perturbation& p) -> Result<LossResult> {
    if (p.scale > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      return LossResult{1.0, 1};
    }
    throw_if_cancelled();
    return LossResult{2.0, 1};
  };
  CHECK_THROWS_AS(pair.run(cancellable_minus, plus, minus, &lp, &lm), Cancelled);
  cancel = false;
  REQUIRE(pair.run(cancellable_minus, plus, minus, &lp, &lm).is_ok());
  CHECK(lp.sum == 1.0);
  CHECK(lm.sum == 2.0);
}

TEST_CASE("a loss has the same bits on any number of threads, over a vocabulary of many chunks", "[client][pair]") {
  // 40 vocabulary tiles (more chunks than threads), rows enough for the packed GEMM, matrices big enough
  // to be split over threads, a perturbation on every weight.
  const auto c = test::tiny_llama_config(5000, 64, 2, 4, 2, 192, /*tied=*/false);
  auto model = test::make_llama(c, test::random_llama_tensors(c, 31));
  REQUIRE(model->weights().make_trainable(NamePatterns("*")).is_ok());
  std::vector<std::vector<int32_t>> seqs;
  for (int b = 0; b < 4; ++b) {
    seqs.emplace_back();
    for (int t = 0; t < 40 - 7 * b; ++t) seqs.back().push_back((b * 977 + t * 131) % 5000);
  }
  const TokenBatch batch = TokenBatch::from_sequences(seqs, 0);
  std::vector<int32_t> targets(batch.tokens.size(), -1);
  for (int b = 0; b < batch.batch; ++b)
    for (int t = 0; t + 1 < batch.lengths[b]; ++t) targets[b * batch.seq_len + t] = batch.tokens[b * batch.seq_len + t + 1];
  const Perturbation p{true, Distribution::kRademacher, 7, 1e-2f};
  auto one = model->token_loss(nullptr, batch, targets, p);
  REQUIRE(one.is_ok());
  for (int threads : {1, 2, 3, 4}) {
    INFO(threads << " threads");
    ThreadPool pool(threads);
    auto many = model->token_loss(&pool, batch, targets, p);
    REQUIRE(many.is_ok());
    CHECK(std::memcmp(&many->sum, &one->sum, sizeof(double)) == 0);
    CHECK(many->count == one->count);
  }
}

TEST_CASE("the memory estimate counts the second pass's activations when both run at once", "[client][pair]") {
  const auto c = test::tiny_llama_config(5000, 64, 2, 4, 2, 192, /*tied=*/false);
  auto model = test::make_llama(c, test::random_llama_tensors(c, 32));
  const auto one = estimate_training_memory(*model, NamePatterns("*"), 8, 128);
  const auto two = estimate_training_memory(*model, NamePatterns("*"), 8, 128, /*concurrent_pair=*/true);
  CHECK(one.twin_activations == 0);
  CHECK(one.activations > 0);
  CHECK(two.twin_activations == one.activations);
  CHECK(two.total() == one.total() + one.activations);
  CHECK(one.describe().find("second forward pass") == std::string::npos);
  CHECK(two.describe().find("second forward pass at once") != std::string::npos);
}

TEST_CASE("auto pairs the passes when the second pass's activations are a small share of the run", "[client][pair]") {
  ThreadPool one(1), two(2);
  // Llama 110M's shape without its weights: the decision reads the config and the store's sizes only.
  const auto c = test::tiny_llama_config(4096, 64, 2, 4, 2, 192, false);
  auto model = test::make_llama(c, test::random_llama_tensors(c, 33));  // ~2.5 MiB of weights
  PairMode parsed = PairMode::kConcurrent;
  REQUIRE(parse_pair_mode("auto", &parsed));
  CHECK(parsed == PairMode::kAuto);
  CHECK_FALSE(parse_pair_mode("sometimes", &parsed));
  // Small batches: under 32 MiB, at once.
  auto small = choose_pair(*model, &two, PairMode::kAuto, 4, 64);
  CHECK(small.concurrent);
  CHECK(small.why.rfind("concurrent: the second pass's", 0) == 0);
  // A batch whose activations dwarf the weights: one after the other, saying why and how to override.
  const uint64_t big_twin = estimate_pass_working_set(c, 512, 256);
  REQUIRE(big_twin > (uint64_t{32} << 20));
  auto big = choose_pair(*model, &two, PairMode::kAuto, 512, 256);
  CHECK_FALSE(big.concurrent);
  CHECK(big.why.find("--pair concurrent") != std::string::npos);
  CHECK(choose_pair(*model, &two, PairMode::kConcurrent, 512, 256).concurrent);
  CHECK_FALSE(choose_pair(*model, &one, PairMode::kConcurrent, 4, 64).concurrent);
  CHECK_FALSE(choose_pair(*model, &two, PairMode::kSequential, 4, 64).concurrent);
  // The rule on byte counts: up to 64 MiB always, above it at most 8 % of one pass's memory.
  const uint64_t MiB = uint64_t{1} << 20;
  CHECK(auto_pair_fits(64 * MiB, 64 * MiB));
  CHECK_FALSE(auto_pair_fits(65 * MiB, 800 * MiB));  // 8.1 %
  CHECK(auto_pair_fits(65 * MiB, 900 * MiB));        // 7.2 %
  CHECK(auto_pair_fits(272 * MiB, 5291 * MiB));      // OPT-1.3B F32, 16 x 128: 5.1 %
  CHECK_FALSE(auto_pair_fits(272 * MiB, 2788 * MiB));  // OPT-1.3B BF16 base with LoRA: 9.8 %
  // The working-set estimate grows with the tokens, linearly.
  CHECK(estimate_pass_working_set(c, 8, 128) == 2 * estimate_pass_working_set(c, 4, 128));
}

TEST_CASE("under a memory budget the passes run at once only when the budget holds both", "[client][pair]") {
  const auto c = test::tiny_llama_config(5000, 64, 2, 4, 2, 192, /*tied=*/false);
  auto model = test::make_llama(c, test::random_llama_tensors(c, 34));
  const NamePatterns all("*");
  const auto one = estimate_training_memory(*model, all, 8, 128);
  const auto two = estimate_training_memory(*model, all, 8, 128, /*concurrent_pair=*/true);
  REQUIRE(two.total() > one.total());
  auto none = pair_under_budget(*model, all, 8, 128, 0);
  CHECK((none.fits && none.pair == PairMode::kAuto));
  auto roomy = pair_under_budget(*model, all, 8, 128, two.total());
  CHECK((roomy.fits && roomy.pair == PairMode::kConcurrent));
  auto between = pair_under_budget(*model, all, 8, 128, two.total() - 1);
  CHECK((between.fits && between.pair == PairMode::kSequential));
  auto exact = pair_under_budget(*model, all, 8, 128, one.total());
  CHECK((exact.fits && exact.pair == PairMode::kSequential));
  auto tight = pair_under_budget(*model, all, 8, 128, one.total() - 1);
  CHECK_FALSE(tight.fits);
  CHECK(tight.estimate.total() == one.total());  // the figure a refusal quotes: one pass after the other
}
