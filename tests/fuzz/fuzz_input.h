// Helpers for the libFuzzer harnesses: the parsers that read files get the input through a per-process
// file on tmpfs.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

namespace pocketllm::fuzz {

// Writes the input to a file of this process (under /dev/shm when it exists) and returns its path.
inline std::string input_file(const uint8_t* data, size_t size, const char* suffix) {
  static const std::string dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  const std::string path = dir + "/pocketllm-fuzz-" + std::to_string(getpid()) + suffix;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return path;
  if (size) std::fwrite(data, 1, size, f);
  std::fclose(f);
  return path;
}

}  // namespace pocketllm::fuzz
