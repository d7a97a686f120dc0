// Progress of long work, reported from inside the engine to whoever started it. An entry point (the
// SDK's evaluate, the CLI's eval) installs a sink for its thread with a ProgressScope; loops that know
// how far they are (batches of an evaluation) call report_work_progress. Without a scope the call is one
// thread-local load. A sink that returns false asks the work to stop: the reporter throws Cancelled,
// which unwinds like a cancellation (common/cancel.h).
#pragma once

#include <cstddef>
#include <functional>

namespace pocketllm {

using ProgressSink = std::function<bool(size_t done, size_t total)>;

class ProgressScope {
 public:
  explicit ProgressScope(ProgressSink sink);
  ~ProgressScope();
  ProgressScope(const ProgressScope&) = delete;
  ProgressScope& operator=(const ProgressScope&) = delete;

 private:
  ProgressSink sink_;
  ProgressSink* previous_;
};

// `done` of `total` units of the current thread's work are finished; throws Cancelled when the sink
// says stop.
void report_work_progress(size_t done, size_t total);

}  // namespace pocketllm
