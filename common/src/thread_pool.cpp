#include "pocketllm/common/thread_pool.h"

#include <chrono>

namespace pocketllm {
namespace {

// Spins until done() or kSpinMicros have passed; true if done() became true.
template <class Done>
bool spin_until(Done done) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(ThreadPool::kSpinMicros);
  for (int i = 0;; ++i) {
    if (done()) return true;
    if ((i & 15) == 15) {
      if (std::chrono::steady_clock::now() >= until) return false;
      std::this_thread::yield();  // another thread of this process may need the core more
    }
  }
}

}  // namespace

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());
  if (threads <= 0) threads = 1;
  workers_.reserve(static_cast<size_t>(threads - 1));
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_.store(true);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::drain(TaskFn fn, void* ctx, size_t n_tasks) {
  for (;;) {
    const size_t task = next_.fetch_add(1, std::memory_order_relaxed);
    if (task >= n_tasks) return;
    fn(ctx, task);
  }
}

void ThreadPool::worker_loop() {
  // Every worker takes part in every job exactly once (it may find no task left), and run_impl waits
  // for all of them, so no worker can still be looking at a job's function after run_impl returned.
  // The job's fields are written before generation_ is advanced (release), so a worker that sees the new
  // generation (acquire) reads them without the mutex.
  uint64_t seen = 0;
  for (;;) {
    auto ready = [&] { return stopping_.load(std::memory_order_acquire) || generation_.load(std::memory_order_acquire) != seen; };
    if (!spin_until(ready)) {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, ready);
    }
    if (stopping_.load(std::memory_order_acquire)) return;
    seen = generation_.load(std::memory_order_acquire);
    drain(fn_, ctx_, n_tasks_);
    if (finished_.fetch_add(1, std::memory_order_acq_rel) + 1 == static_cast<int>(workers_.size())) {
      std::lock_guard<std::mutex> lock(mutex_);  // the caller checks finished_ under it before it sleeps
      done_.notify_all();
    }
  }
}

void ThreadPool::run_impl(size_t n_tasks, TaskFn fn, void* ctx) {
  std::lock_guard<std::mutex> run_lock(run_mutex_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    fn_ = fn;
    ctx_ = ctx;
    n_tasks_ = n_tasks;
    next_.store(0, std::memory_order_relaxed);
    finished_.store(0, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  drain(fn, ctx, n_tasks);
  const int workers = static_cast<int>(workers_.size());
  auto all_done = [&] { return finished_.load(std::memory_order_acquire) == workers; };
  if (spin_until(all_done)) return;
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, all_done);
}

}  // namespace pocketllm
