// safetensors headers and data, as a device or the server would map them.
#include <string>
#include <vector>

#include "pocketllm/common/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = pocketllm::SafetensorsFile::from_bytes(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
  if (!f) return 0;
  std::vector<float> out;
  for (const auto& t : f->tensors()) {
    const size_t n = std::min<size_t>(static_cast<size_t>(t.numel), 64);
    out.resize(n);
    (void)f->read_f32(t, 0, n, out.data());
  }
  return 0;
}
