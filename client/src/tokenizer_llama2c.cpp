// The llama2.c tokenizer (run.c's encode/decode): a SentencePiece BPE vocabulary with merge scores
// and byte fallback (<0x00>..<0xFF> at ids 3..258), a dummy-prefix space, BOS = 1, EOS = 2.
#include <cstring>
#include <unordered_map>

#include "pocketllm/client/tokenizer.h"
#include "pocketllm/common/file_util.h"

namespace pocketllm {
namespace {

class Llama2cTokenizer : public Tokenizer {
 public:
  Llama2cTokenizer(std::vector<std::string> pieces, std::vector<float> scores)
      : pieces_(std::move(pieces)), scores_(std::move(scores)) {
    for (size_t i = 0; i < pieces_.size(); ++i) lookup_.emplace(pieces_[i], static_cast<int32_t>(i));  // first wins
    bos_id_ = 1;
    eos_id_ = 2;
    pad_id_ = 0;
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      auto it = lookup_.find(name);
      byte_ids_[b] = it == lookup_.end() ? -1 : it->second;
    }
  }

  int vocab_size() const override { return static_cast<int>(pieces_.size()); }

  int32_t token_id(std::string_view piece) const override {
    auto it = lookup_.find(std::string(piece));
    return it == lookup_.end() ? -1 : it->second;
  }

  Result<std::vector<int32_t>> encode(std::string_view text, bool add_bos, bool add_eos) const override {
    std::vector<int32_t> ids;
    if (add_bos) ids.push_back(bos_id_);
    if (!text.empty()) {
      const int32_t space = token_id(" ");
      if (space >= 0) ids.push_back(space);
    }
    // One code point at a time (a lead byte and up to three continuation bytes).
    size_t i = 0;
    while (i < text.size()) {
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
    // Greedy merges: repeatedly merge the adjacent pair whose concatenation has the highest score.
    const size_t first = add_bos ? 1 : 0;
    std::string pair;
    for (;;) {
      float best = -1e10f;
      int32_t best_id = -1;
      size_t best_at = 0;
      for (size_t k = first; k + 1 < ids.size(); ++k) {
        pair = pieces_[ids[k]];
        pair += pieces_[ids[k + 1]];
        auto it = lookup_.find(pair);
        if (it != lookup_.end() && scores_[it->second] > best) {
          best = scores_[it->second];
          best_id = it->second;
          best_at = k;
        }
      }
      if (best_id < 0) break;
      ids[best_at] = best_id;
      ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(best_at) + 1);
    }
    if (add_eos) ids.push_back(eos_id_);
    return ids;
  }

  std::string decode_piece(int32_t prev, int32_t id) const override {
    if (id < 0 || id >= vocab_size()) return "";
    const std::string& piece = pieces_[id];
    unsigned int byte = 0;
    if (piece.size() == 6 && std::sscanf(piece.c_str(), "<0x%02X>", &byte) == 1) return std::string(1, static_cast<char>(byte));
    if (prev == bos_id_ && !piece.empty() && piece[0] == ' ') return piece.substr(1);
    return piece;
  }

 private:
  std::vector<std::string> pieces_;
  std::vector<float> scores_;
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
  return std::unique_ptr<Tokenizer>(new Llama2cTokenizer(std::move(pieces), std::move(scores)));
}

}  // namespace pocketllm
