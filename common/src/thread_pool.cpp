#include "pocketllm/common/thread_pool.h"

namespace pocketllm {

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());
  if (threads <= 0) threads = 1;
  workers_.reserve(static_cast<size_t>(threads - 1));
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
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
  uint64_t seen = 0;
  for (;;) {
    TaskFn fn;
    void* ctx;
    size_t n_tasks;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
      fn = fn_;
      ctx = ctx_;
      n_tasks = n_tasks_;
    }
    drain(fn, ctx, n_tasks);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (++finished_ == static_cast<int>(workers_.size())) done_.notify_all();
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
    finished_ = 0;
    ++generation_;
  }
  wake_.notify_all();
  drain(fn, ctx, n_tasks);
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [&] { return finished_ == static_cast<int>(workers_.size()); });
}

}  // namespace pocketllm
