// Internal: the Hugging Face BPE tokenizer built from an in-memory tokenizer.json object (the GGUF loader
// describes a GGUF "gpt2" vocabulary this way), and the vocabulary of one for the GGUF writer.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "pocketllm/client/tokenizer.h"

namespace pocketllm {

Result<std::unique_ptr<Tokenizer>> make_hf_tokenizer(const nlohmann::json& tokenizer, const nlohmann::json& config,
                                                     const std::string& where);

// A byte-level BPE tokenizer's vocabulary as GGUF stores it; false for other tokenizers.
struct BpeVocab {
  std::vector<std::string> tokens;
  std::vector<std::string> merges;  // "a b", by rank
  std::vector<int32_t> types;       // 1 normal, 3 control (added special tokens), 4 user-defined
  std::string pre;                  // the pre-tokenizer's GGUF name (tokenizer.ggml.pre); "" when it has none
  bool add_bos = false;             // encoding starts with the BOS token
};
bool bpe_vocab_of(const Tokenizer& t, BpeVocab* out);

// The pre-tokenizer a GGUF `tokenizer.ggml.pre` names, as a tokenizer.json object; false when unknown.
bool pre_tokenizer_for_gguf(const std::string& pre, nlohmann::json* out);

}  // namespace pocketllm
