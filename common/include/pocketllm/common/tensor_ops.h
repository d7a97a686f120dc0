// Whole-tensor perturbation operations, chunked over a thread pool. Results are bit-identical for any
// pool size (each element is computed independently from its global index), and nothing allocates.
#pragma once

#include <cstddef>
#include <cstdint>

#include "pocketllm/common/perturbation.h"
#include "pocketllm/common/thread_pool.h"
#include "pocketllm/common/update_entry.h"

namespace pocketllm {

// Elements per task: a multiple of both block sizes so tasks never share a Philox block.
inline constexpr size_t kTensorOpChunk = size_t{1} << 16;

// Runs body(begin, count) over [0, n) in chunks of kTensorOpChunk elements on the pool: the fixed
// chunking every tensor op uses, so results never depend on the thread count.
template <class Body>
void for_each_chunk(ThreadPool* pool, size_t n, Body&& body) {
  const size_t chunks = (n + kTensorOpChunk - 1) / kTensorOpChunk;
  parallel_for(pool, chunks, [&](size_t chunk) {
    const size_t begin = chunk * kTensorOpChunk;
    body(begin, kTensorOpChunk < n - begin ? kTensorOpChunk : n - begin);
  });
}

// data[i] += c * z_i for i in [0, n).  pool may be null (single-threaded).
void perturb_tensor(ThreadPool* pool, Distribution dist, uint64_t seed, uint64_t tag, float c, float* data, size_t n);

// dst[i] = src[i] + c * z_i (out of place; the tile the forward pass reads).
void perturb_tensor_copy(ThreadPool* pool, Distribution dist, uint64_t seed, uint64_t tag, float c, const float* src,
                         float* dst, size_t n);

// data[i] -= entry.coeff * z_i: one logged step applied to one tensor.
void apply_update_entry(ThreadPool* pool, Distribution dist, const UpdateEntry& entry, uint64_t tag, float* data,
                        size_t n);

// Applies entries[0..count) in order to one tensor, each as theta <- theta - (coeff * scale) * z. With scale 1,
// equal, bit for bit, to calling apply_update_entry for each entry; faster, because each chunk stays in
// cache across entries. `data` may be a part of the tensor: data[0] is its element `first` (z_first).
void apply_update_entries(ThreadPool* pool, Distribution dist, const UpdateEntry* entries, size_t count, uint64_t tag,
                          float* data, size_t n, float scale = 1.0f, size_t first = 0);

// out[i] = z_i for i in [0, n).
void fill_z(ThreadPool* pool, Distribution dist, uint64_t seed, uint64_t tag, float* out, size_t n);

}  // namespace pocketllm
