// What the CPU (and the OS, for the register state) supports, read once with CPUID/XGETBV on x86-64;
// all false elsewhere. Kernels compiled with target attributes are chosen by these at run time.
#pragma once

namespace pocketllm {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512vnni = false;
};

const CpuFeatures& cpu_features();

}  // namespace pocketllm
