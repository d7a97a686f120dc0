// How both store backends keep vectors of seeds and scalars: the values' bytes as they are in memory
// (little-endian on every platform the server runs on), so what is read back is bit for bit what was
// written.
#pragma once

#include <cstring>
#include <string>
#include <vector>

namespace pocketllm::server {

template <class T>
std::string pack(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

template <class T>
bool unpack(const std::string& b, std::vector<T>* out) {
  if (b.size() % sizeof(T) != 0) return false;
  out->resize(b.size() / sizeof(T));
  if (!b.empty()) std::memcpy(out->data(), b.data(), b.size());
  return true;
}

}  // namespace pocketllm::server
