// Q4_K, Q5_K and Q6_K matrices (the Q4_K_M / Q5_K_M / Q6_K files) repacked for AVX-512 VNNI beside the
// Q8_0/Q4_0 layout of kernels_quant_packed.h: 16 rows interleaved per 256-element super-block, the quant
// bits and scales as the file stores them (the packed copy is exactly the file's size), so one 512-bit
// `vpdpbusd` multiplies 4 elements of 16 rows by 4 activation bytes. Activations are the packed kernels'
// 8-bit blocks of 32 (PackedActivations). Layout and arithmetic: docs/gguf.md §7.
// Internal to kernels_quant_packed.cpp, which chooses these for the K types.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels_quant_packed.h"
#include "pocketllm/common/dtype.h"

namespace pocketllm::kpacked {

// Whether `t` has a packed K-type kernel (Q4_K, Q5_K, Q6_K).
bool handles(DType t);

// Bytes of one group of 16 rows of `superblocks` super-blocks (16 rows of the file's bytes).
size_t group_bytes(DType t, size_t superblocks);

// 16 rows of the file (row i at src + i * row_bytes) into one packed group at dst.
void pack_group(DType t, const uint8_t* src, size_t row_bytes, size_t superblocks, uint8_t* dst);

// y[(r - m0) * ldy + i] = activation row r . row i of the group, r in [m0, m1), i < 16. AVX-512 VNNI only.
void product_group(DType t, const uint8_t* group, size_t superblocks, const PackedActivations& x, size_t m0, size_t m1,
                   float* y, size_t ldy);

// Row `lane` (< 16) of a packed group as float32, the same values the dequantizer gives for the file's row.
void unpack_row(DType t, const uint8_t* group, size_t superblocks, size_t lane, float* out);

}  // namespace pocketllm::kpacked
