#include "pocketllm/client/paired_forward.h"

namespace pocketllm {

PairedForward::PairedForward(LanguageModel& model, ThreadPool* pool, bool concurrent) : model_(model), pool_(pool) {
  const int threads = pool ? pool->size() : 1;
  if (!concurrent) {
    why_ = "sequential: turned off";
    return;
  }
  if (threads < 2) {
    why_ = "sequential: one thread";
    return;
  }
  auto twin = model.twin();
  if (!twin) {
    why_ = "sequential: " + twin.status().message();
    return;
  }
  twin_ = std::move(twin.value());
  if (threads > 2) {
    half_[0] = std::make_unique<ThreadPool>(threads / 2);
    half_[1] = std::make_unique<ThreadPool>(threads - threads / 2);
  }
  why_ = "concurrent: the two passes on " + std::to_string(threads / 2) + " + " + std::to_string(threads - threads / 2) +
         " threads";
}

}  // namespace pocketllm
