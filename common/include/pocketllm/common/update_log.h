// The ordered log of update entries that describes a fine-tuning run (docs/update-log.md), its JSON
// and binary forms (docs/update-log.md), and replay onto named float32 tensors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>
#include <utility>

#include "pocketllm/common/perturbation.h"
#include "pocketllm/common/status.h"
#include "pocketllm/common/thread_pool.h"
#include "pocketllm/common/update_entry.h"

namespace pocketllm {

// "0123456789abcdef": 16 lower-case hex digits, the form seeds take in JSON.
std::string seed_to_hex(uint64_t seed);
// Accepts exactly 16 hex digits (either case) for JSON; see parse_seed_text for command lines.
bool seed_from_hex(std::string_view text, uint64_t* seed);
// Command-line form: "0x" + 1..16 hex digits, or a decimal number below 2^64.
bool parse_seed_text(std::string_view text, uint64_t* seed);

class UpdateLog {
 public:
  UpdateLog() = default;
  explicit UpdateLog(std::vector<UpdateEntry> entries) : entries_(std::move(entries)) {}

  // Rejects a non-finite coeff (it would poison every weight it touches).
  Status append(const UpdateEntry& entry);
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  const std::vector<UpdateEntry>& entries() const { return entries_; }
  const UpdateEntry& operator[](size_t i) const { return entries_[i]; }
  // Entries [begin, end), clamped to the log.
  UpdateLog slice(size_t begin, size_t end) const;

  // {"format":"pocketllm.update_log","version":1,"entries":[{"seed":"…","coeff":…},…]}
  std::string to_json() const;
  static Result<UpdateLog> from_json(std::string_view text);
  // "PLLMLOG1" magic, little-endian count, 12-byte entries, FNV-1a-64 trailer (docs/update-log.md).
  std::string to_binary() const;
  static Result<UpdateLog> from_binary(std::string_view bytes);

  bool operator==(const UpdateLog& o) const { return entries_ == o.entries_; }

 private:
  std::vector<UpdateEntry> entries_;
};

// A trainable tensor to replay onto: its canonical name (which fixes its z) and its float32 elements.
struct NamedTensor {
  NamedTensor() = default;
  NamedTensor(std::string n, float* d, size_t count, float s = 1.0f) : name(std::move(n)), data(d), numel(count), scale(s) {}

  std::string name;
  float* data = nullptr;
  size_t numel = 0;
  float scale = 1.0f;  // the tensor's step scale s: entries apply as theta <- theta - (coeff * s) * z
  // Trainable rows (--trainable-rows): the element ranges {begin, count} that entries apply to, in
  // increasing order; elements outside them keep their values. Empty: the whole tensor.
  std::vector<std::pair<size_t, size_t>> spans;
};

// Calls f(begin, count) for each element range of `t` that trains: its spans, or [0, numel) when it has none.
template <class F>
void for_each_span(const NamedTensor& t, F&& f) {
  if (t.spans.empty()) {
    f(size_t{0}, t.numel);
    return;
  }
  for (const auto& s : t.spans) f(s.first, s.second);
}

// Applies entries[0..count) in order to every tensor: theta <- theta - (coeff * s) * z(seed, tensor), s the
// tensor's step scale (1 unless the run set one; coeff * s is one float32 product), within its spans.
// Bit-identical to applying them one at a time, for any pool size.
void replay_entries(ThreadPool* pool, Distribution dist, const UpdateEntry* entries, size_t count,
                    const std::vector<NamedTensor>& tensors);
inline void replay_log(ThreadPool* pool, Distribution dist, const UpdateLog& log, const std::vector<NamedTensor>& tensors) {
  replay_entries(pool, dist, log.entries().data(), log.size(), tensors);
}

}  // namespace pocketllm
