// Tokenizers: text <-> token ids. Implementations: llama2.c tokenizer.bin (SentencePiece-style BPE
// scores with byte fallback) and Hugging Face tokenizer.json BPE.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "pocketllm/common/status.h"

namespace pocketllm {

// A SentencePiece-style BPE vocabulary with merge scores and byte fallback (<0x00>..<0xFF> pieces): the
// llama2.c tokenizer.bin and llama.cpp's "llama" tokenizer model (GGUF). Pieces hold spaces as ' '
// (GGUF files store U+2581 '▁'; the GGUF loader and writer convert).
struct SpmVocab {
  std::vector<std::string> pieces;
  std::vector<float> scores;
  std::vector<int32_t> types;  // llama.cpp token types (1 normal, 2 unknown, 3 control, 6 byte); may be empty
  int32_t bos = 1, eos = 2, unk = 0, pad = 0;
  bool add_space_prefix = true;  // a text starts with a space (SentencePiece's dummy prefix); Gemma's does not
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual int vocab_size() const = 0;
  virtual Result<std::vector<int32_t>> encode(std::string_view text, bool add_bos, bool add_eos) const = 0;
  // Text of `id` as it continues a stream whose previous token was `prev` (-1 at the start).
  virtual std::string decode_piece(int32_t prev, int32_t id) const = 0;
  std::string decode(const std::vector<int32_t>& ids) const;

  int32_t bos_id() const { return bos_id_; }
  int32_t eos_id() const { return eos_id_; }
  int32_t pad_id() const { return pad_id_; }
  int32_t mask_id() const { return mask_id_; }
  virtual int32_t token_id(std::string_view piece) const = 0;  // -1 when absent
  // The vocabulary of a SentencePiece-style tokenizer (for writing it into a GGUF file); null otherwise.
  virtual const SpmVocab* spm_vocab() const { return nullptr; }

  // Whether special tokens written in the text ("<|endoftext|>", "<mask>") are encoded as those tokens
  // (the default, as Hugging Face tokenizers do) or as ordinary text, so that untrusted user text cannot
  // smuggle in control tokens (Hugging Face's split_special_tokens).
  void set_parse_special(bool on) { parse_special_ = on; }
  bool parse_special() const { return parse_special_; }

 protected:
  int32_t bos_id_ = -1, eos_id_ = -1, pad_id_ = -1, mask_id_ = -1;
  bool parse_special_ = true;
};

// llama2.c's tokenizer.bin: int32 max_token_length, then per token: f32 score, int32 length, bytes.
Result<std::unique_ptr<Tokenizer>> load_llama2c_tokenizer(const std::string& path, int vocab_size);

// The bytes of a llama2.c tokenizer.bin holding `vocab`.
std::string encode_llama2c_tokenizer(const SpmVocab& vocab);

// A SentencePiece-style tokenizer from a vocabulary held in memory (a GGUF file's).
Result<std::unique_ptr<Tokenizer>> make_spm_tokenizer(SpmVocab vocab);

// Hugging Face tokenizer.json (BPE model), with tokenizer_config.json (optional, "" to skip) naming the
// special tokens.
Result<std::unique_ptr<Tokenizer>> load_hf_tokenizer(const std::string& tokenizer_json,
                                                     const std::string& tokenizer_config);

}  // namespace pocketllm
