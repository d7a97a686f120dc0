// Where tests find their inputs: committed fixtures, and the shared read-only data (models, datasets)
// that sits beside the clone. POCKETLLM_SHARED overrides the latter.
#pragma once

#include <cstdlib>
#include <string>
#include <sys/stat.h>

namespace pocketllm::test {

inline std::string fixtures_dir() { return POCKETLLM_TEST_FIXTURES; }

inline std::string shared_dir() {
  if (const char* env = std::getenv("POCKETLLM_SHARED")) return env;
  return POCKETLLM_DEFAULT_SHARED;
}

// The real pretrained stories260K (llama2.c checkpoint + tok512.bin) in the shared data.
inline std::string stories260k_dir() { return shared_dir() + "/hub/karpathy/tinyllamas/stories260K"; }

inline bool path_exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}

}  // namespace pocketllm::test
