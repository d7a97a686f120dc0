// After warm-up, a training step (two perturbed forwards, the loss, the scalar and the update) allocates
// nothing: counted by replacing the global allocation functions in this test binary.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
#include <atomic>
#include <cstdlib>
#include <new>

#include "model_fixtures.h"
#include "pocketllm/client/loader.h"
#include "pocketllm/client/trainer.h"

namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocations{0};
}  // namespace

void* operator new(std::size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

using namespace pocketllm;

TEST_CASE("a training step allocates nothing after warm-up", "[client][trainer][memory]") {
  const std::string dir = test::temp_dir("");
  test::write_toy_model_dir(dir, 41);
  auto loaded = load_model(dir, LoadOptions::with_tokenizer());
  REQUIRE(loaded.is_ok());
  REQUIRE(loaded->model->weights().make_trainable(NamePatterns("*")).is_ok());
  for (const std::string kind : {"lm", "classify"}) {
    INFO(kind);
    auto task = test::toy_sentence_task(kind, *loaded->tokenizer, *loaded->model);
    TrainOptions o;
    o.batch_size = 3;  // batches of different lengths across steps
    o.n_spsa = 2;
    o.weight_decay = 0.01f;
    // One thread: which worker picks up which task is not deterministic, and a worker's per-thread
    // scratch grows once, on the first task it happens to run. Counting on the calling thread alone
    // makes the check exact; the buffers are the same ones every thread uses.
    ThreadPool pool(1);
    ZoTrainer trainer(*loaded->model, *task, k_shot_indices(*task, 0, 0), o, &pool);
    StepRecord rec;
    // Warm-up: every batch shape of the first epochs, so all buffers reach their size.
    for (int t = 0; t < 12; ++t) {
      REQUIRE(trainer.step_into(t, &rec).is_ok());
      trainer.apply(rec);
    }
    g_allocations = 0;
    g_counting = true;
    for (int t = 12; t < 24; ++t) {
      const Status s = trainer.step_into(t, &rec);
      trainer.apply(rec);
      if (!s.is_ok()) break;
    }
    g_counting = false;
    CHECK(g_allocations.load() == 0);
  }
}
