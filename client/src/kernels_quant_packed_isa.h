// What each instruction set's packed int8 kernels provide to kernels_quant_packed.cpp, which owns the
// parts every CPU shares (choosing a path, repacking a store, splitting a product over threads).
//   x86-64 (kernels_quant_packed_x86.cpp): AVX-512 VNNI, Q8_0 / Q4_0 / Q4_K / Q5_K / Q6_K
//   arm64  (kernels_quant_packed_arm.cpp): i8mm (smmla) or dotprod (sdot), Q8_0 / Q4_0
// Each ISA file also defines the public quantize_activations, packed_product and unpack_rows of
// kernels_quant_packed.h for its layouts. Internal to the client library.
#pragma once

#include <cstddef>
#include <cstdint>

#include "pocketllm/common/dtype.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define POCKETLLM_PACKED_X86 1
#elif defined(__aarch64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__))
#define POCKETLLM_PACKED_ARM 1
#endif

namespace pocketllm::packed_isa {

constexpr size_t kRows = 16;  // rows of W per packed group, on every ISA

// The path this CPU supports best, as a short name ("AVX-512 VNNI", "i8mm", "dotprod"), or nullptr.
// `wanted` is POCKETLLM_INT8 when set: "off" gives nullptr; a path the CPU has (arm64: "dotprod" on an
// i8mm CPU) is taken instead of the best.
const char* detect(const char* wanted);

// Whether the chosen path has a layout and a kernel for weights of type t.
bool handles(DType t);

// Bytes of one packed group of kRows rows of k columns.
size_t group_bytes(DType t, size_t k);

// kRows rows of the file (row i at src + i * row_bytes, k columns) into one packed group at dst.
void pack_group(DType t, const uint8_t* src, size_t row_bytes, size_t k, uint8_t* dst);

}  // namespace pocketllm::packed_isa
