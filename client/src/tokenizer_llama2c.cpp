// The llama2.c tokenizer (run.c's encode/decode): a SentencePiece BPE vocabulary with merge scores
// and byte fallback (<0x00>..<0xFF> at ids 3..258), a dummy-prefix space, BOS = 1, EOS = 2.
#include <algorithm>
#include <cstring>
#include <queue>
#include <unordered_map>

#include "pocketllm/client/tokenizer.h"
#include "pocketllm/common/cancel.h"
#include "pocketllm/common/file_util.h"

namespace pocketllm {
namespace {

class Llama2cTokenizer : public Tokenizer {
 public:
  explicit Llama2cTokenizer(SpmVocab v) : vocab_(std::move(v)), pieces_(vocab_.pieces), scores_(vocab_.scores) {
    for (size_t i = 0; i < pieces_.size(); ++i) lookup_.emplace(pieces_[i], static_cast<int32_t>(i));  // first wins
    bos_id_ = vocab_.bos;
    eos_id_ = vocab_.eos;
    pad_id_ = vocab_.pad;
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      auto it = lookup_.find(name);
      byte_ids_[b] = it == lookup_.end() ? -1 : it->second;
    }
  }

  int vocab_size() const override { return static_cast<int>(pieces_.size()); }
  const SpmVocab* spm_vocab() const override { return &vocab_; }

  int32_t token_id(std::string_view piece) const override {
    auto it = lookup_.find(std::string(piece));
    return it == lookup_.end() ? -1 : it->second;
  }

  Result<std::vector<int32_t>> encode(std::string_view text, bool add_bos, bool add_eos) const override {
    std::vector<int32_t> ids;
    if (add_bos) ids.push_back(bos_id_);
    if (!text.empty() && vocab_.add_space_prefix) {
      const int32_t space = token_id(" ");
      if (space >= 0) ids.push_back(space);
    }
    // One code point at a time (a lead byte and up to three continuation bytes).
    size_t i = 0;
    while (i < text.size()) {
      if ((ids.size() & 65535) == 0) throw_if_cancelled();
      size_t len = 1;
      while (i + len < text.size() && len < 4 && (static_cast<unsigned char>(text[i + len]) & 0xC0) == 0x80) ++len;
      const std::string cp(text.substr(i, len));
      const int32_t id = token_id(cp);
      if (id >= 0) {
        ids.push_back(id);
      } else {
        for (unsigned char byte : cp) {
          const int32_t b = byte_ids_[byte];
          if (b < 0) return corrupt("tokenizer has no byte-fallback token for byte " + std::to_string(byte));
          ids.push_back(b);
        }
      }
      i += len;
    }
    // Greedy merges: repeatedly merge the adjacent pair whose concatenation has the highest score (the
    // leftmost of equal scores), as run.c does — with a heap of candidate pairs over a linked list, so
    // a long prompt costs O(n log n) instead of run.c's O(n^2) rescans.
    const size_t first = add_bos ? 1 : 0;
    if (ids.size() > first + 1) merge_pairs(&ids, first);
    if (add_eos) ids.push_back(eos_id_);
    return ids;
  }

  std::string decode_piece(int32_t prev, int32_t id) const override {
    if (id < 0 || id >= vocab_size()) return "";
    const std::string& piece = pieces_[id];
    unsigned int byte = 0;
    if (piece.size() == 6 && std::sscanf(piece.c_str(), "<0x%02X>", &byte) == 1) return std::string(1, static_cast<char>(byte));
    if (vocab_.add_space_prefix && prev == bos_id_ && !piece.empty() && piece[0] == ' ') return piece.substr(1);
    return piece;
  }

 private:
  struct Candidate {
    float score;
    size_t left, right;      // positions in the symbol list
    int32_t left_id, right_id, merged;  // the ids the pair had when it was pushed (stale when changed)
    bool operator<(const Candidate& o) const { return score != o.score ? score < o.score : left > o.left; }
  };

  void push_pair(std::priority_queue<Candidate>* heap, const std::vector<int32_t>& sym, size_t l, size_t r, std::string* pair) const {
    *pair = pieces_[sym[l]];
    *pair += pieces_[sym[r]];
    auto it = lookup_.find(*pair);
    if (it != lookup_.end() && scores_[it->second] > -1e10f) heap->push(Candidate{scores_[it->second], l, r, sym[l], sym[r], it->second});
  }

  void merge_pairs(std::vector<int32_t>* ids, size_t first) const {
    std::vector<int32_t>& sym = *ids;
    const size_t n = sym.size();
    constexpr size_t kNone = static_cast<size_t>(-1);
    std::vector<size_t> prev(n), next(n);
    std::vector<char> alive(n, 1);
    for (size_t k = 0; k < n; ++k) {
      prev[k] = k == first ? kNone : k - 1;
      next[k] = k + 1 < n ? k + 1 : kNone;
    }
    std::priority_queue<Candidate> heap;
    std::string pair;
    for (size_t k = first; k + 1 < n; ++k) {
      if ((k & 65535) == 0) throw_if_cancelled();
      push_pair(&heap, sym, k, k + 1, &pair);
    }
    size_t merges = 0;
    while (!heap.empty()) {
      const Candidate c = heap.top();
      heap.pop();
      if (!alive[c.left] || !alive[c.right] || next[c.left] != c.right || sym[c.left] != c.left_id || sym[c.right] != c.right_id)
        continue;  // stale: one side merged since
      if ((++merges & 1023) == 0) throw_if_cancelled();
      sym[c.left] = c.merged;
      alive[c.right] = 0;
      next[c.left] = next[c.right];
      if (next[c.right] != kNone) prev[next[c.right]] = c.left;
      if (prev[c.left] != kNone) push_pair(&heap, sym, prev[c.left], c.left, &pair);
      if (next[c.left] != kNone) push_pair(&heap, sym, c.left, next[c.left], &pair);
    }
    size_t out = 0;
    for (size_t k = 0; k < n; ++k)
      if (alive[k]) sym[out++] = sym[k];
    sym.resize(out);
  }

  SpmVocab vocab_;
  const std::vector<std::string>& pieces_;
  const std::vector<float>& scores_;
  std::unordered_map<std::string, int32_t> lookup_;
  int32_t byte_ids_[256];
};

}  // namespace

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  int32_t prev = -1;
  for (int32_t id : ids) {
    if (id == bos_id_ || id == eos_id_) {
      prev = id;
      continue;
    }
    out += decode_piece(prev, id);
    prev = id;
  }
  return out;
}

Result<std::unique_ptr<Tokenizer>> load_llama2c_tokenizer(const std::string& path, int vocab_size) {
  auto bytes = read_file(path, size_t{1} << 28);
  if (!bytes) return bytes.status();
  const std::string& b = bytes.value();
  size_t at = 0;
  auto take = [&](void* dst, size_t n) {
    if (at + n > b.size()) return false;
    std::memcpy(dst, b.data() + at, n);
    at += n;
    return true;
  };
  int32_t max_len = 0;
  if (!take(&max_len, 4) || max_len <= 0 || max_len > 1024) return corrupt(path + ": not a llama2.c tokenizer (bad header)");
  std::vector<std::string> pieces;
  std::vector<float> scores;
  for (int i = 0; i < vocab_size; ++i) {
    float score;
    int32_t len;
    if (!take(&score, 4) || !take(&len, 4))
      return corrupt(path + ": truncated at token " + std::to_string(i) + " of " + std::to_string(vocab_size) +
                     " (does the tokenizer match the model's vocabulary size?)");
    if (len < 0 || len > max_len || at + static_cast<size_t>(len) > b.size())
      return corrupt(path + ": token " + std::to_string(i) + " has invalid length " + std::to_string(len));
    pieces.emplace_back(b.data() + at, static_cast<size_t>(len));
    at += static_cast<size_t>(len);
    scores.push_back(score);
  }
  if (at != b.size())
    return mismatch(path + ": " + std::to_string(b.size() - at) + " bytes left after " + std::to_string(vocab_size) +
                    " tokens: the tokenizer's vocabulary is larger than the model's");
  SpmVocab v;
  v.pieces = std::move(pieces);
  v.scores = std::move(scores);
  return std::unique_ptr<Tokenizer>(new Llama2cTokenizer(std::move(v)));
}

std::string encode_llama2c_tokenizer(const SpmVocab& v) {
  int32_t max_len = 1;
  for (const auto& p : v.pieces) max_len = std::max<int32_t>(max_len, static_cast<int32_t>(p.size()));
  std::string out(reinterpret_cast<const char*>(&max_len), 4);
  for (size_t i = 0; i < v.pieces.size(); ++i) {
    const float score = i < v.scores.size() ? v.scores[i] : 0.0f;
    const auto len = static_cast<int32_t>(v.pieces[i].size());
    out.append(reinterpret_cast<const char*>(&score), 4);
    out.append(reinterpret_cast<const char*>(&len), 4);
    out += v.pieces[i];
  }
  return out;
}

Result<std::unique_ptr<Tokenizer>> make_spm_tokenizer(SpmVocab v) {
  const auto n = static_cast<int32_t>(v.pieces.size());
  if (n == 0) return corrupt("tokenizer vocabulary is empty");
  if (v.scores.size() != v.pieces.size())
    return corrupt("tokenizer has " + std::to_string(v.pieces.size()) + " tokens but " + std::to_string(v.scores.size()) + " scores");
  if (!v.types.empty() && v.types.size() != v.pieces.size())
    return corrupt("tokenizer has " + std::to_string(v.pieces.size()) + " tokens but " + std::to_string(v.types.size()) + " token types");
  for (int32_t id : {v.bos, v.eos, v.unk})
    if (id < -1 || id >= n) return corrupt("tokenizer special token id " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(n));
  if (v.pad < -1 || v.pad >= n) v.pad = -1;
  return std::unique_ptr<Tokenizer>(new Llama2cTokenizer(std::move(v)));
}

}  // namespace pocketllm
