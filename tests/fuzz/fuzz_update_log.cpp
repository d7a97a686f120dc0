// Update logs in both forms; what parses must survive its own round trip.
#include <cstdlib>
#include <string>

#include "pocketllm/common/update_log.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (auto b = pocketllm::UpdateLog::from_binary(text)) {
    auto again = pocketllm::UpdateLog::from_binary(b->to_binary());
    if (!again || !(again.value() == b.value())) std::abort();
  }
  if (auto j = pocketllm::UpdateLog::from_json(text)) {
    auto again = pocketllm::UpdateLog::from_json(j->to_json());
    if (!again || again->size() != j->size()) std::abort();
  }
  return 0;
}
