// What the CPU (and the OS, for the register state) supports, read once: CPUID/XGETBV on x86-64, the
// kernel's hwcaps (getauxval) on arm64 Linux and Android; all false elsewhere. Kernels compiled with target attributes are chosen by these at run time.
#pragma once

namespace pocketllm {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512vnni = false;
  bool arm_dotprod = false;  // Armv8.2 sdot/udot (FEAT_DotProd)
  bool arm_i8mm = false;     // Armv8.6 smmla (FEAT_I8MM)
};

const CpuFeatures& cpu_features();

}  // namespace pocketllm
