// The float GEMM of the linear layers: Y[M, N] = X[M, K] · W[N, K]ᵀ with W in the engine's out × in layout.
// Own packed micro-kernels (AVX-512F: 12 × 32, AVX2+FMA: 6 × 16 outputs held in registers) compiled into
// every x86-64 build with target attributes and chosen at run time from CPUID; Eigen is the path elsewhere
// and the reference the micro-kernels are tested against.
//
// Use: pack X once per layer call (pack_x), then multiply any number of W tiles against it, from any
// threads (multiply_tile packs each tile into the thread's scratch). Each output element is one FMA chain
// over k in ascending order from zero (s = fma(x[kk], w[kk], s)), whatever M, the tile, the thread count or
// the k block the machine's L1 picks: the same bytes for a row whichever batch, buffer or x86 CPU it is in
// (resume and replay compare runs bit for bit), and the same on both paths.
#pragma once

#include <cstddef>

namespace pocketllm::gemm {

enum class Path { kEigen, kAvx2, kAvx512 };

// The path this CPU runs: the widest it supports, or what POCKETLLM_GEMM=eigen|avx2|avx512 asks for
// (benches compare paths in one run with it; a path the CPU lacks falls back to the widest it has).
Path chosen_path();
bool path_supported(Path p);
const char* path_name(Path p);

// Batches with fewer rows than this run through Eigen (its GEMV-like product is faster for one or a
// few tokens: bench/run_gemm_shootout.sh).
constexpr size_t kMinRows = 8;

// Rows of X per register block of path p (6 for AVX2, 12 for AVX-512). Panels are independent: rows
// [r0, r0 + n) with r0 a multiple of this pack to packed + r0 * k, so threads can pack parts of X.
size_t row_block(Path p);
// Floats pack_x writes for X [m, k] on path p (0 for kEigen).
size_t packed_x_floats(Path p, size_t m, size_t k);
// X [m, k] (row stride k) into the micro-kernel's row panels.
void pack_x(Path p, const float* x, size_t m, size_t k, float* packed);
// The same for X with row stride ldx ≥ k (a head's slice of the attention's query rows).
void pack_x(Path p, const float* x, size_t ldx, size_t m, size_t k, float* packed);

// Rows [0, m) × columns [0, k) of x (row stride ldx) as columns [c0, c0 + k) of pack_x's layout for an X
// of `cols` columns, `packed` pointing at that X's row m0 (a multiple of row_block(p)); the panels' other
// columns are left as they are. Column blocks packed this way give pack_x's bytes for the whole X.
void pack_x_columns(Path p, const float* x, size_t ldx, size_t m, size_t k, size_t cols, size_t c0, float* packed);

// This core's L2 in bytes (sysconf), 0 where the system does not say (Android's libc, some VMs): W tiles
// are sized to it (kernels.cpp packed_tile_rows).
size_t l2_cache_bytes();

// The longest k block path p runs on this machine (from the L1d size), or the one set for testing. The
// block is how k is traversed, never what is summed.
size_t k_block_limit(Path p);
// Tests: run k in blocks of at most kc (rounded up to 16) to show the bytes do not move; 0 restores the
// machine's.
void set_k_block_for_testing(size_t kc);

// Floats of scratch multiply_tile needs for a tile of `rows` rows of W.
size_t tile_scratch_floats(Path p, size_t rows, size_t k);

// y[r, j] (row stride ldy) = sum_k X[r, k] * w[j, k] for r < m, j < rows; w is [rows, k] row-major.
// `packed` is pack_x's output for the same p, m, k; `scratch` holds tile_scratch_floats(p, rows, k).
void multiply_tile(Path p, const float* packed, size_t m, size_t k, const float* w, size_t rows, float* scratch, float* y,
                   size_t ldy);
// The same for w with row stride ldw ≥ k (a head's slice of the attention's key rows).
void multiply_tile(Path p, const float* packed, size_t m, size_t k, const float* w, size_t ldw, size_t rows, float* scratch,
                   float* y, size_t ldy);

// multiply_tile in two steps, for a tile of W that meets X in several row blocks: pack_w puts W's `rows`
// rows (row stride ldw) into column panels (tile_scratch_floats(p, rows, k) floats), multiply_panels
// multiplies the m rows of X at `packed` (pack_x's output, or the slice of it from a row that is a
// multiple of row_block(p)) by them. The same bytes as multiply_tile for every row.
void pack_w(Path p, const float* w, size_t ldw, size_t rows, size_t k, float* panels);
void multiply_panels(Path p, const float* packed, size_t m, size_t k, const float* panels, size_t rows, float* y,
                     size_t ldy);

// The same for a tile of W in the in × out layout (GPT-2's Conv1D): y[r, j] = sum_k X[r, k] * w[k, j] for
// j < cols, w [k, cols] with row stride ldw. Same bytes as multiply_tile on the transposed tile; `scratch`
// holds tile_scratch_floats(p, cols, k).
void multiply_tile_in_out(Path p, const float* packed, size_t m, size_t k, const float* w, size_t ldw, size_t cols,
                          float* scratch, float* y, size_t ldy);

}  // namespace pocketllm::gemm
