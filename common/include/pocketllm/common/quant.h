// ggml's block-quantized formats (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K … Q6_K): dequantization exactly as the format is
// defined (docs/gguf.md, "Block formats") and the reference quantizers for Q8_0 and Q4_0 (ggml's
// rounding rules). Every float operation is separately rounded (compiled without contraction), so the
// values are the same bits on every CPU.
#pragma once

#include <cstddef>
#include <cstdint>

#include "pocketllm/common/dtype.h"

namespace pocketllm {

// Block layouts as stored (little-endian, no padding).
struct BlockQ8_0 {
  uint16_t d;  // f16 scale
  int8_t qs[32];
};
struct BlockQ4_0 {
  uint16_t d;  // f16 scale
  uint8_t qs[16];  // element j in the low nibble of qs[j], element j + 16 in the high nibble
};
struct BlockQ4_K {
  uint16_t d;     // f16 super-block scale of the 6-bit sub-block scales
  uint16_t dmin;  // f16 super-block scale of the 6-bit sub-block minimums
  uint8_t scales[12];  // 8 (scale, min) pairs of 6 bits, packed
  uint8_t qs[128];     // 4-bit quants: sub-blocks 2i (low nibbles) and 2i+1 (high nibbles) share 32 bytes
};
struct BlockQ6_K {
  uint8_t ql[128];  // low 4 bits
  uint8_t qh[64];   // high 2 bits
  int8_t scales[16];
  uint16_t d;  // f16 super-block scale
};
struct BlockQ4_1 {
  uint16_t d, m;   // f16 scale and offset
  uint8_t qs[16];  // as Q4_0
};
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];   // bit j of the little-endian u32: the fifth bit of element j
  uint8_t qs[16];  // the low 4 bits, as Q4_0
};
struct BlockQ5_1 {
  uint16_t d, m;
  uint8_t qh[4];
  uint8_t qs[16];
};
struct BlockQ2_K {
  uint8_t scales[16];  // sub-block s of 16: 4-bit scale (low nibble) and 4-bit min (high nibble)
  uint8_t qs[64];      // 2-bit quants
  uint16_t d, dmin;
};
struct BlockQ3_K {
  uint8_t hmask[32];   // the high bit of each quant (set: no -4)
  uint8_t qs[64];      // the low 2 bits
  uint8_t scales[12];  // 16 scales of 6 bits, packed
  uint16_t d;
};
struct BlockQ5_K {
  uint16_t d, dmin;
  uint8_t scales[12];  // as Q4_K
  uint8_t qh[32];      // the fifth bit: bit s of qh[l] for element l of sub-block s
  uint8_t qs[128];     // the low 4 bits, as Q4_K
};
static_assert(sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 && sizeof(BlockQ5_1) == 24 && sizeof(BlockQ2_K) == 84 &&
                  sizeof(BlockQ3_K) == 110 && sizeof(BlockQ5_K) == 176,
              "ggml block sizes");
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_K) == 144 && sizeof(BlockQ6_K) == 210,
              "ggml block sizes");

// out[0 .. count) = the dequantized elements of the blocks at `src`; count a multiple of the block size.
void dequantize(DType t, const void* src, size_t count, float* out);

// ggml's reference quantizers (quantize_row_q8_0_ref / quantize_row_q4_0_ref); count a multiple of 32.
// Non-finite inputs make no sense in a weight: callers refuse them first (quantize_checked).
void quantize_q8_0(const float* x, size_t count, void* dst);
void quantize_q4_0(const float* x, size_t count, void* dst);
// Quantizes to Q8_0 or Q4_0; false (nothing written beyond dst's first blocks) if a value is not finite.
bool quantize_checked(DType t, const float* x, size_t count, void* dst);

}  // namespace pocketllm
