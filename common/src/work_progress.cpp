#include "pocketllm/common/work_progress.h"

#include "pocketllm/common/cancel.h"

namespace pocketllm {
namespace {
thread_local ProgressSink* t_sink = nullptr;
}  // namespace

ProgressScope::ProgressScope(ProgressSink sink) : sink_(std::move(sink)), previous_(t_sink) { t_sink = &sink_; }
ProgressScope::~ProgressScope() { t_sink = previous_; }

void report_work_progress(size_t done, size_t total) {
  if (t_sink != nullptr && *t_sink && !(*t_sink)(done, total)) throw Cancelled();
}

}  // namespace pocketllm
