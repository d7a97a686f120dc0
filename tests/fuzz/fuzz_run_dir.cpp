// A run directory's files: the input's first line is spec.json, the rest log.jsonl.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "pocketllm/client/run_dir.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = "/tmp/pocketllm-fuzz-run-" + std::to_string(getpid());
  ::mkdir(dir.c_str(), 0700);
  const std::string text(reinterpret_cast<const char*>(data), size);
  const size_t nl = text.find('\n');
  std::ofstream(dir + "/spec.json", std::ios::binary | std::ios::trunc) << text.substr(0, nl);
  std::ofstream(dir + "/log.jsonl", std::ios::binary | std::ios::trunc) << (nl == std::string::npos ? "" : text.substr(nl + 1));
  if (auto run = pocketllm::RunDir::open(dir)) (void)run->update_log();
  return 0;
}
