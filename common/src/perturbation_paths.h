// Internal to pocketllm_core: the vector kernels of the perturbation streams, chosen at run time — Philox over
// 16 block counters (the Gaussian stream's batches) and the whole Rademacher path (docs/perturbation.md §4).
// A RademacherBlocksFn computes, for the whole 128-element blocks [first_block, first_block + blocks), element
// e = first_block * 128 + k:
//   dst[k] = src[k] + float(c_bits ^ sign_e)        when src != nullptr
//   dst[k] = float(c_bits ^ sign_e)                 when src == nullptr
// with sign_e = 0x80000000 when z_e = -1 and 0 when z_e = +1. Integer Philox and one IEEE add per element:
// the same bytes as the generic path on every CPU (tests compare them element by element).
#pragma once

#include <cstddef>
#include <cstdint>

#include "pocketllm/common/philox.h"

namespace pocketllm::perturb_paths {

using RademacherBlocksFn = void (*)(PhiloxKey key, uint64_t tag, uint64_t first_block, uint64_t blocks,
                                    uint32_t c_bits, const float* src, float* dst);

// Philox4x32-10 of blocks first_block .. first_block + 15 with counters (block, tag) and `key`: out[w][i] is
// word w of block first_block + i (the Gaussian stream's batches, docs/perturbation.md §5).
using Philox16Fn = void (*)(PhiloxKey key, uint64_t tag, uint64_t first_block, uint32_t out[4][16]);

// nullptr when the CPU lacks the instructions or the build is not x86-64 with GCC/Clang.
RademacherBlocksFn rademacher_avx2();
RademacherBlocksFn rademacher_avx512();
Philox16Fn philox_batch_avx2();
Philox16Fn philox_batch_avx512();

}  // namespace pocketllm::perturb_paths
