// Releasing the pages of a read-only file mapping once their contents live elsewhere (a repacked,
// unpermuted or quantized copy), so a weight is resident once.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>

namespace pocketllm {

// Drops the resident pages wholly inside [p, p + n) of a read-only file mapping (re-read on next access)
// and turns off read-around there: what reads these bytes later (a few embedding rows per token) would
// otherwise fault in 128 KiB around every row.
inline void release_file_pages(const void* p, uint64_t n) {
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t lo = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;
  const uintptr_t hi = (reinterpret_cast<uintptr_t>(p) + n) / page * page;
  if (hi <= lo) return;
  ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
  ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_RANDOM);
}

}  // namespace pocketllm
