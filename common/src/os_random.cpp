#include "pocketllm/common/os_random.h"

#include <cmath>
#include <random>

namespace pocketllm {

uint64_t os_random_u64() {
  thread_local std::random_device rd;  // per thread: no contention between concurrent callers
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

double os_gaussian() {
  auto uniform = [] { return (static_cast<double>(os_random_u64() >> 11) + 0.5) * 0x1p-53; };  // in (0, 1)
  const double u1 = uniform(), u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

}  // namespace pocketllm
