// A fixed pool of worker threads for data-parallel loops. run() dispatches without allocating, so hot
// training loops can call it every step. One run() at a time per pool (concurrent callers are
// serialised); a task must not call run() on the same pool.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>

namespace pocketllm {

class ThreadPool {
 public:
  // `threads` counts the calling thread too; 0 means std::thread::hardware_concurrency().
  explicit ThreadPool(int threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(task) for every task in [0, n_tasks), spread over the pool and the caller; returns when
  // all calls have returned.
  template <class Fn>
  void run(size_t n_tasks, Fn&& fn) {
    run_impl(n_tasks, [](void* ctx, size_t task) { (*static_cast<std::remove_reference_t<Fn>*>(ctx))(task); },
             static_cast<void*>(&fn));
  }

 private:
  using TaskFn = void (*)(void*, size_t);
  void run_impl(size_t n_tasks, TaskFn fn, void* ctx);
  void worker_loop();
  void drain(TaskFn fn, void* ctx, size_t n_tasks);

  std::vector<std::thread> workers_;
  std::mutex run_mutex_;  // one job at a time
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  uint64_t generation_ = 0;
  bool stopping_ = false;
  TaskFn fn_ = nullptr;
  void* ctx_ = nullptr;
  size_t n_tasks_ = 0;
  std::atomic<size_t> next_{0};
  int finished_ = 0;
};

// Runs fn(task) for all tasks: on `pool` when given, else inline on the caller.
template <class Fn>
void parallel_for(ThreadPool* pool, size_t n_tasks, Fn&& fn) {
  if (pool == nullptr || pool->size() == 1 || n_tasks <= 1) {
    for (size_t t = 0; t < n_tasks; ++t) fn(t);
  } else {
    pool->run(n_tasks, fn);
  }
}

}  // namespace pocketllm
