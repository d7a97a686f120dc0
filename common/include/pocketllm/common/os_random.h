// Randomness from the operating system (std::random_device: getrandom(2) on Linux, the platform's
// secure source elsewhere), for what must not be predictable: differential-privacy noise. Never for
// anything that must be reproduced — perturbation directions and data orders come from seeds.
#pragma once

#include <cstdint>

namespace pocketllm {

uint64_t os_random_u64();
// One standard normal draw (Box–Muller on two 53-bit uniforms).
double os_gaussian();

}  // namespace pocketllm
