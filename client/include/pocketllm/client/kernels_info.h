// Which kernel paths this process uses on this CPU (chosen at run time on x86-64): for logs,
// `pocketllm info --system` and the SDK's pllm_system_info.
#pragma once

#include <string>

namespace pocketllm {

// e.g. "quantized: packed int8 (AVX-512 VNNI); direct: AVX2+FMA+F16C; float GEMM: Eigen (AVX-512)".
std::string kernel_paths();

}  // namespace pocketllm
