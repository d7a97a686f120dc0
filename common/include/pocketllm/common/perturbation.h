// The perturbation direction z(seed, tensor) of docs/perturbation.md, bit-exact on every CPU.
//
// Element i of a tensor is a pure function of (distribution, seed, tensor tag, i): nothing depends on
// how a caller splits a tensor into ranges, on threads or on SIMD width. These functions are
// single-threaded and allocation-free; tensor_ops.h runs them over whole tensors on a thread pool.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace pocketllm {

enum class Distribution : uint8_t {
  kRademacher = 0,  // z_i = ±1 (the default)
  kGaussian = 1,    // z_i ~ N(0,1) by Box–Muller on exact float32 operations
};

const char* distribution_name(Distribution dist);
// Accepts "rademacher" and "gaussian"; returns false for anything else.
bool parse_distribution(std::string_view text, Distribution* out);

// Version of the perturbation spec implemented here (docs/perturbation.md). A training spec records it.
inline constexpr int kPerturbationSpecVersion = 1;

// FNV-1a, 64-bit.
uint64_t fnv1a64(const void* data, size_t size, uint64_t hash = 0xcbf29ce484222325ull);
// The tag of a tensor: FNV-1a-64 of its canonical (Hugging Face) name as UTF-8.
uint64_t tensor_tag(std::string_view canonical_name);

// out[k] = z_{start+k} for k in [0, count).
void generate_z(Distribution dist, uint64_t seed, uint64_t tag, uint64_t start, size_t count, float* out);

// dst[k] = src[k] + c * z_{start+k}, each element one float32 operation for Rademacher (src ± c) and
// two (product, then sum; never fused) for Gaussian. src == dst is allowed (in place).
// Applying an update entry (seed, coeff) is add_scaled_z with c = -coeff.
void add_scaled_z(Distribution dist, uint64_t seed, uint64_t tag, uint64_t start, size_t count, float c,
                  const float* src, float* dst);

// The vector paths of z, chosen once at start: the widest the CPU has. Rademacher: Philox and the add over
// whole 128-element blocks in AVX2 / AVX-512 intrinsics; Gaussian: the generic Box–Muller code compiled
// again for AVX2 and AVX-512. Every path gives the same bytes (integer Philox; IEEE operations that round
// alike at any vector width, never fused). "generic" is the code compiled for the build's own ISA.
// POCKETLLM_PERTURB=generic|avx2|avx512 chooses one (a path the CPU lacks falls back to the widest it has).
enum class PerturbationPath : uint8_t { kGeneric = 0, kAvx2 = 1, kAvx512 = 2 };
PerturbationPath perturbation_path();
bool perturbation_path_supported(PerturbationPath path);
// Tests and benches: use `path` from now on; false (and no change) when the CPU lacks it.
bool set_perturbation_path(PerturbationPath path);
const char* perturbation_path_name(PerturbationPath path);

// Elements per Philox call: 128 for Rademacher (one bit each), 4 for Gaussian.
inline constexpr size_t kRademacherBlock = 128;
inline constexpr size_t kGaussianBlock = 4;

}  // namespace pocketllm
