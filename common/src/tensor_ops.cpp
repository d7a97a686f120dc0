#include "pocketllm/common/tensor_ops.h"

#include <algorithm>

namespace pocketllm {
namespace {

// Entries per pass over a chunk in apply_update_entries: the chunk (256 KiB) stays in L2.
constexpr size_t kEntriesPerPass = 64;

}  // namespace

void perturb_tensor(ThreadPool* pool, Distribution dist, uint64_t seed, uint64_t tag, float c, float* data, size_t n) {
  for_each_chunk(pool, n, [&](size_t begin, size_t count) {
    add_scaled_z(dist, seed, tag, begin, count, c, data + begin, data + begin);
  });
}

void perturb_tensor_copy(ThreadPool* pool, Distribution dist, uint64_t seed, uint64_t tag, float c, const float* src,
                         float* dst, size_t n) {
  for_each_chunk(pool, n, [&](size_t begin, size_t count) {
    add_scaled_z(dist, seed, tag, begin, count, c, src + begin, dst + begin);
  });
}

void apply_update_entry(ThreadPool* pool, Distribution dist, const UpdateEntry& entry, uint64_t tag, float* data,
                        size_t n) {
  perturb_tensor(pool, dist, entry.seed, tag, -entry.coeff, data, n);
}

void apply_update_entries(ThreadPool* pool, Distribution dist, const UpdateEntry* entries, size_t count, uint64_t tag,
                          float* data, size_t n, float scale, size_t first) {
  for (size_t e0 = 0; e0 < count; e0 += kEntriesPerPass) {
    const size_t e1 = std::min(count, e0 + kEntriesPerPass);
    for_each_chunk(pool, n, [&](size_t begin, size_t len) {
      for (size_t e = e0; e < e1; ++e)
        add_scaled_z(dist, entries[e].seed, tag, first + begin, len, -(entries[e].coeff * scale), data + begin, data + begin);
    });
  }
}

void fill_z(ThreadPool* pool, Distribution dist, uint64_t seed, uint64_t tag, float* out, size_t n) {
  for_each_chunk(pool, n, [&](size_t begin, size_t count) { generate_z(dist, seed, tag, begin, count, out + begin); });
}

}  // namespace pocketllm
