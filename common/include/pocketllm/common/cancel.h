// Cancellation from another thread. A caller (the SDK's entry points) installs a flag for the work it
// runs on the current thread with a CancelScope; long loops in the engine call throw_if_cancelled() at
// points where stopping leaves everything consistent (between tensors while loading, between layers of
// a forward pass, between batches, between merges of a tokenizer, between retries of a request). The
// exception unwinds to the entry point, which reports kCancelled. Without a scope (the CLI, the server,
// the tests of the engine) the check is one thread-local load and never throws.
#pragma once

#include <atomic>
#include <stdexcept>

namespace pocketllm {

class Cancelled : public std::runtime_error {
 public:
  Cancelled() : std::runtime_error("cancelled") {}
};

class CancelScope {
 public:
  explicit CancelScope(const std::atomic<bool>* flag);
  ~CancelScope();
  CancelScope(const CancelScope&) = delete;
  CancelScope& operator=(const CancelScope&) = delete;

 private:
  const std::atomic<bool>* previous_;
};

// Whether the current thread's work has been asked to stop.
bool cancel_requested();
// The flag the current thread's scope installed (null without one): work handed to another thread
// installs it there with a CancelScope of its own.
const std::atomic<bool>* current_cancel_flag();
// Throws Cancelled when it has.
void throw_if_cancelled();

}  // namespace pocketllm
