// Hugging Face tokenizer.json with a BPE model, in both flavours:
//  - byte-level (GPT-2, OPT, RoBERTa, Qwen, Llama 3): bytes mapped to printable code points, split by
//    the model's pre-tokenizer regex (PCRE2, Unicode classes), merged by rank;
//  - SentencePiece-style (Llama 2, TinyLlama): normalizer prepends/replaces with "▁", merges by rank,
//    byte fallback to <0xXX> tokens.
// Added (special) tokens are split out of the text first; the post-processor adds BOS/EOS.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <climits>
#include <map>
#include <queue>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "pocketllm/client/tokenizer.h"
#include "tokenizer_hf.h"

#include "pocketllm/common/cancel.h"
#include "pocketllm/common/json_util.h"
#include "pocketllm/common/file_util.h"

namespace pocketllm {
namespace {

using nlohmann::json;

void append_utf8(std::string* s, uint32_t cp) {
  if (cp < 0x80) {
    s->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    s->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    s->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    s->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    s->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    s->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    s->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    s->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    s->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    s->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Bytes of the code point at s[i] by its lead byte; an invalid byte (or one cut short) is one piece.
size_t utf8_chars_at(const std::string& s, size_t i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  const size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
  return i + n > s.size() ? 1 : n;
}

// Splits UTF-8 text into code points (as strings); invalid bytes become single-byte pieces.
std::vector<std::string> utf8_chars(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_chars_at(s, i);
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

// GPT-2's reversible byte -> printable code point table.
struct ByteMap {
  std::string to_unicode[256];
  std::unordered_map<std::string, uint8_t> from_unicode;
  ByteMap() {
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const uint32_t cp = printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + n++);
      append_utf8(&to_unicode[b], cp);
      from_unicode[to_unicode[b]] = static_cast<uint8_t>(b);
    }
  }
};
const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

class Regex {
 public:
  Regex() = default;
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  ~Regex() {
    if (md_) pcre2_match_data_free(md_);
    if (code_) pcre2_code_free(code_);
  }
  Status compile(const std::string& pattern) {
    int err = 0;
    PCRE2_SIZE off = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(), PCRE2_UTF | PCRE2_UCP, &err, &off,
                          nullptr);
    if (!code_) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      return corrupt("tokenizer regex does not compile at offset " + std::to_string(off) + ": " +
                     reinterpret_cast<char*>(msg));
    }
    pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);  // optional speed-up; falls back to the interpreter
    md_ = pcre2_match_data_create_from_pattern(code_, nullptr);
    return Status::ok();
  }
  // Pieces of `s`: matches and the gaps between them, each flagged.
  void split(const std::string& s, std::vector<std::pair<std::string, bool>>* out) const {
    size_t pos = 0, last = 0;
    while (pos <= s.size()) {
      const int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), pos,
                                 PCRE2_NO_UTF_CHECK, md_, nullptr);
      if (rc < 0) break;
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md_);
      const size_t b = ov[0], e = ov[1];
      if (b > last) out->emplace_back(s.substr(last, b - last), false);
      if (e > b) out->emplace_back(s.substr(b, e - b), true);
      last = e;
      pos = e > b ? e : e + 1;
      // Step over a whole code point after an empty match.
      while (pos < s.size() && (static_cast<unsigned char>(s[pos]) & 0xC0) == 0x80) ++pos;
    }
    if (last < s.size()) out->emplace_back(s.substr(last), false);
  }

 private:
  pcre2_code* code_ = nullptr;
  pcre2_match_data* md_ = nullptr;
};

struct PreTokenizerStep {
  enum Kind { kByteLevel, kSplit, kMetaspace, kDigits, kWhitespaceSplit } kind;
  std::unique_ptr<Regex> regex;  // ByteLevel with use_regex, Split
  std::string behavior = "Isolated";
  bool invert = false;
  bool add_prefix_space = false;
  std::string replacement = "\xE2\x96\x81";  // "▁"
  std::string prepend_scheme = "always";
};

struct NormalizerStep {
  enum Kind { kPrepend, kReplace, kLowercase, kIdentity } kind;
  std::string a, b;
};

const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// A token id from tokenizer.json: an integer in [0, 2^24] (a float or a huge number would be undefined
// to convert, a negative one would index far outside the vocabulary).
bool parse_token_id(const json& v, int* out) {
  if (!v.is_number_integer()) return false;
  const int64_t id = v.get<int64_t>();
  if (id < 0 || id > (1 << 24)) return false;
  *out = static_cast<int>(id);
  return true;
}

// Pre-tokenizer regexes by GGUF name (the models' published tokenizer.json patterns).
const char* const kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// The GGUF `tokenizer.ggml.pre` name of a tokenizer.json pre-tokenizer, or "".
std::string gguf_pre_name(const json& p) {
  if (!p.is_object()) return "";
  const std::string type = p.value("type", "");
  if (type == "ByteLevel") return p.value("use_regex", true) && !p.value("add_prefix_space", false) ? "gpt-2" : "";
  if (type != "Sequence" || !p.contains("pretokenizers") || p["pretokenizers"].size() != 2) return "";
  const json& a = p["pretokenizers"][0];
  const json& b = p["pretokenizers"][1];
  if (a.value("type", "") != "Split" || b.value("type", "") != "ByteLevel" || b.value("use_regex", true)) return "";
  if (!a.contains("pattern") || !a["pattern"].contains("Regex") || !a["pattern"]["Regex"].is_string()) return "";
  const std::string re = a["pattern"]["Regex"].get<std::string>();
  if (re == kLlama3Pattern) return "llama-bpe";
  if (re == kQwen2Pattern) return "qwen2";
  return "";
}

class HfBpeTokenizer : public Tokenizer {
 public:
  Status load(const json& j, const json& tok_config, const std::string& where) {
    const json& model = j.at("model");
    if (model.value("type", "BPE") != "BPE")
      return unsupported(where + ": tokenizer model '" + model.value("type", "") + "' (only BPE is supported)");
    for (auto it = model.at("vocab").begin(); it != model.at("vocab").end(); ++it) {
      int id = 0;
      if (!parse_token_id(it.value(), &id)) return corrupt(where + ": vocabulary id of '" + it.key() + "' is not an integer in [0, 2^24]");
      vocab_[it.key()] = id;
      if (static_cast<size_t>(id) >= pieces_.size()) pieces_.resize(static_cast<size_t>(id) + 1);
      pieces_[static_cast<size_t>(id)] = it.key();
    }
    int rank = 0;
    for (const auto& m : model.at("merges")) {
      std::string a, b;
      if (m.is_string()) {
        const std::string s = m.get<std::string>();
        const size_t sp = s.find(' ', 1);
        if (sp == std::string::npos) return corrupt(where + ": merge '" + s + "' is not 'a b'");
        a = s.substr(0, sp);
        b = s.substr(sp + 1);
      } else if (m.is_array() && m.size() == 2) {
        a = m[0].get<std::string>();
        b = m[1].get<std::string>();
      } else {
        return corrupt(where + ": malformed merge entry");
      }
      ranks_.emplace(a + '\x01' + b, rank++);
    }
    byte_fallback_ = model.value("byte_fallback", false);
    ignore_merges_ = model.value("ignore_merges", false);
    if (model.contains("unk_token") && model["unk_token"].is_string()) {
      auto it = vocab_.find(model["unk_token"].get<std::string>());
      if (it != vocab_.end()) unk_id_ = it->second;
    }
    if (j.contains("added_tokens")) {
      for (const auto& t : j["added_tokens"]) {
        const std::string content = t.at("content");
        int id = 0;
        if (!parse_token_id(t.at("id"), &id)) return corrupt(where + ": added token '" + content + "' has no id in [0, 2^24]");
        added_.emplace_back(content, id);
        if (static_cast<size_t>(id) >= pieces_.size()) pieces_.resize(static_cast<size_t>(id) + 1);
        pieces_[static_cast<size_t>(id)] = content;
        vocab_[content] = id;
        special_ids_.push_back(id);
      }
      std::sort(added_.begin(), added_.end(),
                [](const auto& x, const auto& y) { return x.first.size() > y.first.size(); });  // longest first
    }
    POCKETLLM_RETURN_IF_ERROR(load_normalizer(j.value("normalizer", json()), where));
    POCKETLLM_RETURN_IF_ERROR(load_pre_tokenizer(j.value("pre_tokenizer", json()), where));
    pre_name_ = gguf_pre_name(j.value("pre_tokenizer", json()));
    load_post_processor(j.value("post_processor", json()));
    const json& dec = j.value("decoder", json());
    byte_level_decode_ = dump_has(dec, "ByteLevel");
    metaspace_decode_ = dump_has(dec, "Metaspace") || dump_has(dec, "\\u2581") || dump_has(dec, "\xE2\x96\x81");
    strip_leading_space_ = dump_has(dec, "\"Strip\"") || (metaspace_decode_ && prepend_first_);
    // Special token ids from tokenizer_config.json, then the post-processor, then common names.
    auto id_of = [&](const json& v) -> int32_t {
      std::string s;
      if (v.is_string()) s = v.get<std::string>();
      else if (v.is_object() && v.contains("content")) s = v["content"].get<std::string>();
      else return -1;
      return token_id(s);
    };
    if (tok_config.is_object()) {
      if (tok_config.contains("bos_token")) bos_id_ = id_of(tok_config["bos_token"]);
      if (tok_config.contains("eos_token")) eos_id_ = id_of(tok_config["eos_token"]);
      if (tok_config.contains("pad_token")) pad_id_ = id_of(tok_config["pad_token"]);
      if (tok_config.contains("mask_token")) mask_id_ = id_of(tok_config["mask_token"]);
    }
    for (const char* n : {"<s>", "<|begin_of_text|>"})
      if (bos_id_ < 0) bos_id_ = token_id(n);
    for (const char* n : {"</s>", "<|endoftext|>", "<|end_of_text|>"})
      if (eos_id_ < 0) eos_id_ = token_id(n);
    if (mask_id_ < 0) mask_id_ = token_id("<mask>");
    if (pad_id_ < 0) pad_id_ = token_id("<pad>");
    if (prefix_ids_.empty() && bos_id_ >= 0 && template_bos_) prefix_ids_.push_back(bos_id_);
    return Status::ok();
  }

  bool export_vocab(BpeVocab* out) const {
    if (!byte_level_decode_ || pre_name_.empty() || !normalizers_.empty()) return false;
    out->tokens = pieces_;
    out->types.assign(pieces_.size(), 1);
    for (int32_t id : special_ids_) out->types[static_cast<size_t>(id)] = 3;
    std::vector<std::pair<int, std::string>> by_rank;
    by_rank.reserve(ranks_.size());
    for (const auto& [pair, rank] : ranks_) {
      std::string m = pair;
      m[m.find('\x01')] = ' ';
      by_rank.emplace_back(rank, std::move(m));
    }
    std::sort(by_rank.begin(), by_rank.end());
    out->merges.clear();
    for (auto& r : by_rank) out->merges.push_back(std::move(r.second));
    out->pre = pre_name_;
    out->add_bos = !prefix_ids_.empty() && prefix_ids_[0] == bos_id_;
    return true;
  }

  int vocab_size() const override { return static_cast<int>(pieces_.size()); }
  int32_t token_id(std::string_view piece) const override {
    auto it = vocab_.find(std::string(piece));
    return it == vocab_.end() ? -1 : it->second;
  }

  Result<std::vector<int32_t>> encode(std::string_view text_in, bool add_bos, bool add_eos) const override {
    std::vector<int32_t> ids;
    if (add_bos) ids.insert(ids.end(), prefix_ids_.begin(), prefix_ids_.end());
    // Split out added tokens (longest first, leftmost).
    std::string text(text_in);
    size_t pos = 0;
    bool first_segment = true;
    while (pos <= text.size()) {
      size_t best_at = std::string::npos;
      const std::pair<std::string, int>* best = nullptr;
      for (const auto& a : added_) {
        if (!parse_special_) break;
        const size_t at = text.find(a.first, pos);
        if (at != std::string::npos && (at < best_at)) {
          best_at = at;
          best = &a;
        }
      }
      const size_t seg_end = best ? best_at : text.size();
      if (seg_end > pos) encode_segment(text.substr(pos, seg_end - pos), first_segment, &ids);
      first_segment = false;
      if (!best) break;
      ids.push_back(best->second);
      pos = best_at + best->first.size();
    }
    if (add_eos) ids.insert(ids.end(), suffix_ids_.begin(), suffix_ids_.end());
    return ids;
  }

  std::string decode_piece(int32_t prev, int32_t id) const override {
    if (id < 0 || static_cast<size_t>(id) >= pieces_.size()) return "";
    if (std::find(special_ids_.begin(), special_ids_.end(), id) != special_ids_.end()) return "";
    const std::string& p = pieces_[static_cast<size_t>(id)];
    if (byte_level_decode_) {
      std::string out;
      for (const auto& ch : utf8_chars(p)) {
        auto it = byte_map().from_unicode.find(ch);
        out += it == byte_map().from_unicode.end() ? ch : std::string(1, static_cast<char>(it->second));
      }
      return out;
    }
    unsigned int byte = 0;
    if (p.size() == 6 && std::sscanf(p.c_str(), "<0x%02X>", &byte) == 1) return std::string(1, static_cast<char>(byte));
    std::string out = p;
    if (metaspace_decode_) {
      std::string r;
      for (size_t i = 0; i < out.size();) {
        if (out.compare(i, 3, "\xE2\x96\x81") == 0) {
          r.push_back(' ');
          i += 3;
        } else {
          r.push_back(out[i++]);
        }
      }
      out = r;
    }
    const bool at_start = prev < 0 || prev == bos_id_;
    if (strip_leading_space_ && at_start && !out.empty() && out[0] == ' ') out.erase(0, 1);
    return out;
  }

 private:
  static bool dump_has(const json& j, const std::string& needle) {
    return !j.is_null() && j.dump().find(needle) != std::string::npos;
  }

  Status load_normalizer(const json& n, const std::string& where) {
    if (n.is_null()) return Status::ok();
    const std::string type = n.value("type", "");
    if (type == "Sequence") {
      for (const auto& s : n.at("normalizers")) POCKETLLM_RETURN_IF_ERROR(load_normalizer(s, where));
    } else if (type == "Prepend") {
      normalizers_.push_back({NormalizerStep::kPrepend, n.at("prepend"), ""});
    } else if (type == "Replace") {
      const json& p = n.at("pattern");
      if (!p.contains("String")) return unsupported(where + ": Replace normalizer with a regex pattern");
      normalizers_.push_back({NormalizerStep::kReplace, p["String"], n.at("content")});
    } else if (type == "Lowercase") {
      normalizers_.push_back({NormalizerStep::kLowercase, "", ""});
    } else if (type == "NFC" || type == "NFKC") {
      // Text is expected in NFC already (what editors and keyboards produce); composed input passes unchanged.
    } else {
      return unsupported(where + ": normalizer '" + type + "'");
    }
    return Status::ok();
  }

  Status load_pre_tokenizer(const json& p, const std::string& where) {
    if (p.is_null()) return Status::ok();
    const std::string type = p.value("type", "");
    if (type == "Sequence") {
      for (const auto& s : p.at("pretokenizers")) POCKETLLM_RETURN_IF_ERROR(load_pre_tokenizer(s, where));
      return Status::ok();
    }
    PreTokenizerStep step;
    if (type == "ByteLevel") {
      step.kind = PreTokenizerStep::kByteLevel;
      step.add_prefix_space = p.value("add_prefix_space", false);
      if (p.value("use_regex", true)) {
        step.regex = std::make_unique<Regex>();
        POCKETLLM_RETURN_IF_ERROR(step.regex->compile(kGpt2Pattern));
      }
      byte_level_ = true;
    } else if (type == "Split") {
      step.kind = PreTokenizerStep::kSplit;
      const json& pat = p.at("pattern");
      std::string pattern;
      if (pat.contains("Regex")) pattern = pat["Regex"];
      else if (pat.contains("String")) {
        for (char c : pat["String"].get<std::string>()) {
          if (std::string("\\^$.|?*+()[]{}").find(c) != std::string::npos) pattern.push_back('\\');
          pattern.push_back(c);
        }
      }
      step.regex = std::make_unique<Regex>();
      POCKETLLM_RETURN_IF_ERROR(step.regex->compile(pattern));
      step.behavior = p.value("behavior", "Isolated");
      step.invert = p.value("invert", false);
      if (step.behavior != "Isolated" && step.behavior != "Removed" && step.behavior != "MergedWithPrevious" &&
          step.behavior != "MergedWithNext" && step.behavior != "Contiguous")
        return unsupported(where + ": Split behavior '" + step.behavior + "'");
    } else if (type == "Metaspace") {
      step.kind = PreTokenizerStep::kMetaspace;
      step.replacement = p.value("replacement", std::string("\xE2\x96\x81"));
      step.prepend_scheme = p.value("prepend_scheme", p.value("add_prefix_space", true) ? "always" : "never");
      if (step.prepend_scheme == "first") prepend_first_ = true;
    } else if (type == "Digits") {
      step.kind = PreTokenizerStep::kDigits;
      step.regex = std::make_unique<Regex>();
      POCKETLLM_RETURN_IF_ERROR(step.regex->compile(p.value("individual_digits", false) ? R"(\p{N})" : R"(\p{N}+)"));
    } else if (type == "WhitespaceSplit") {
      step.kind = PreTokenizerStep::kWhitespaceSplit;
      step.regex = std::make_unique<Regex>();
      POCKETLLM_RETURN_IF_ERROR(step.regex->compile(R"(\S+)"));
      step.behavior = "Removed";
      step.invert = true;
    } else {
      return unsupported(where + ": pre-tokenizer '" + type + "'");
    }
    pre_.push_back(std::move(step));
    return Status::ok();
  }

  void load_post_processor(const json& p) {
    if (p.is_null()) return;
    const std::string type = p.value("type", "");
    auto special_id = [&](const json& item) -> int32_t {
      if (!item.contains("SpecialToken")) return -1;
      return token_id(item["SpecialToken"].value("id", ""));
    };
    if (type == "TemplateProcessing") {
      bool seen_a = false;
      for (const auto& item : p.value("single", json::array())) {
        if (item.contains("Sequence")) {
          seen_a = true;
          continue;
        }
        const int32_t id = special_id(item);
        if (id >= 0) (seen_a ? suffix_ids_ : prefix_ids_).push_back(id);
      }
    } else if (type == "RobertaProcessing" || type == "BertProcessing") {
      const int32_t cls = token_id(p.value("cls", json::array({""}))[0].get<std::string>());
      const int32_t sep = token_id(p.value("sep", json::array({""}))[0].get<std::string>());
      if (cls >= 0) prefix_ids_.push_back(cls);
      if (sep >= 0) suffix_ids_.push_back(sep);
    } else if (type == "Sequence") {
      for (const auto& s : p.value("processors", json::array())) load_post_processor(s);
    }
  }

  void encode_segment(std::string text, bool first_segment, std::vector<int32_t>* ids) const {
    for (const auto& n : normalizers_) {
      if (n.kind == NormalizerStep::kPrepend) {
        text = n.a + text;
      } else if (n.kind == NormalizerStep::kReplace) {
        std::string r;
        size_t at = 0, f;
        while (!n.a.empty() && (f = text.find(n.a, at)) != std::string::npos) {
          r += text.substr(at, f - at) + n.b;
          at = f + n.a.size();
        }
        text = r + text.substr(at);
      } else if (n.kind == NormalizerStep::kLowercase) {
        for (auto& c : text)
          if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      }
    }
    // Pre-tokenize into words.
    std::vector<std::string> words = {text};
    for (const auto& step : pre_) {
      std::vector<std::string> next;
      for (auto& w : words) {
        if (step.kind == PreTokenizerStep::kMetaspace) {
          std::string r;
          if (step.prepend_scheme == "always" || (step.prepend_scheme == "first" && first_segment)) r = step.replacement;
          for (char c : w) {
            if (c == ' ') r += step.replacement;
            else r.push_back(c);
          }
          next.push_back(r);
          continue;
        }
        if (step.kind == PreTokenizerStep::kByteLevel && step.add_prefix_space && !w.empty() && w[0] != ' ') w = " " + w;
        if (!step.regex) {
          next.push_back(w);
          continue;
        }
        std::vector<std::pair<std::string, bool>> parts;
        step.regex->split(w, &parts);
        if (step.kind == PreTokenizerStep::kSplit && step.behavior != "Isolated" && step.behavior != "Removed") {
          merge_delimiters(step, &parts);
          for (auto& part : parts) next.push_back(std::move(part.first));
          continue;
        }
        for (auto& [piece, matched] : parts) {
          // The delimiters are the pattern's matches, or with `invert` what lies between them.
          const bool delimiter = step.invert ? !matched : matched;
          if (step.behavior == "Removed" && delimiter) continue;
          next.push_back(piece);
        }
      }
      words = std::move(next);
    }
    size_t n = 0;
    for (const auto& w : words) {
      if (w.empty()) continue;
      if ((++n & 1023) == 0) throw_if_cancelled();  // a long prompt is many words
      std::string mapped;
      if (byte_level_)
        for (unsigned char c : w) mapped += byte_map().to_unicode[c];
      else
        mapped = w;
      bpe(mapped, ids);
    }
  }

  // Split's merging behaviors, as Hugging Face tokenizers define them: a delimiter (a match, or a
  // non-match when inverted) joins the part before it (MergedWithPrevious) or after it (MergedWithNext)
  // unless that part is a delimiter too; Contiguous joins runs of delimiters.
  static void merge_delimiters(const PreTokenizerStep& step, std::vector<std::pair<std::string, bool>>* parts) {
    const bool next = step.behavior == "MergedWithNext", contiguous = step.behavior == "Contiguous";
    if (next) std::reverse(parts->begin(), parts->end());
    std::vector<std::pair<std::string, bool>> out;
    bool previous = false;
    for (auto& [piece, matched] : *parts) {
      const bool delim = step.invert ? !matched : matched;
      const bool join = contiguous ? delim && previous : delim && !previous;
      if (join && !out.empty()) out.back().first = next ? piece + out.back().first : out.back().first + piece;
      else out.emplace_back(std::move(piece), delim);
      previous = delim;
    }
    if (next) std::reverse(out.begin(), out.end());
    *parts = std::move(out);
  }

  void bpe(const std::string& word, std::vector<int32_t>* ids) const {
    if (ignore_merges_) {
      auto it = vocab_.find(word);
      if (it != vocab_.end()) {
        ids->push_back(it->second);
        return;
      }
    }
    const std::vector<std::string> sym = merge_by_rank(word);
    for (const auto& s : sym) {
      auto it = vocab_.find(s);
      if (it != vocab_.end()) {
        ids->push_back(it->second);
      } else if (byte_fallback_) {
        for (unsigned char c : s) {
          char name[8];
          std::snprintf(name, sizeof name, "<0x%02X>", c);
          const int32_t b = token_id(name);
          if (b >= 0) ids->push_back(b);
          else if (unk_id_ >= 0) ids->push_back(unk_id_);
        }
      } else if (unk_id_ >= 0) {
        ids->push_back(unk_id_);
      }
    }
  }

  // The word's symbols after BPE: starting from its characters, the adjacent pair of the lowest merge rank
  // — the leftmost of equals — is merged until no pair has a rank (the rule of the reference encoders).
  // A heap of candidate pairs over a linked list of symbols makes that O(n log n) in the word's length: a
  // rescan of every pair per merge (O(n²) with a string per pair) took 49 s for a 50 000-character word —
  // a pasted URL, base64 blob or minified line — and 10 s for 20 000.
  std::vector<std::string> merge_by_rank(const std::string& word) const {
    struct Sym {
      size_t start, len;
      int prev, next;
    };
    std::vector<Sym> sym;
    for (size_t i = 0; i < word.size();) {
      const size_t n = utf8_chars_at(word, i);
      sym.push_back({i, n, static_cast<int>(sym.size()) - 1, static_cast<int>(sym.size()) + 1});
      i += n;
    }
    if (sym.empty()) return {};
    sym.back().next = -1;
    struct Candidate {
      int rank;
      size_t start;  // the left symbol's offset: equal ranks merge leftmost first
      int left;
      size_t left_len, right_len;  // the pair as it was: a merge since makes the candidate stale
      bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : start > o.start; }
    };
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
    std::string key;
    auto consider = [&](int l) {
      if (l < 0 || sym[l].next < 0) return;
      const Sym& a = sym[l];
      const Sym& b = sym[a.next];
      key.assign(word, a.start, a.len);
      key += '\x01';
      key.append(word, b.start, b.len);
      auto it = ranks_.find(key);
      if (it != ranks_.end()) heap.push({it->second, a.start, l, a.len, b.len});
    };
    for (int i = 0; i + 1 < static_cast<int>(sym.size()); ++i) consider(i);
    while (!heap.empty()) {
      const Candidate c = heap.top();
      heap.pop();
      Sym& a = sym[c.left];
      if (a.len != c.left_len || a.next < 0 || sym[a.next].len != c.right_len) continue;  // stale
      const int right = a.next;
      a.len += sym[right].len;  // the right symbol joins the left one
      a.next = sym[right].next;
      if (a.next >= 0) sym[a.next].prev = c.left;
      sym[right].len = 0;
      consider(a.prev);
      consider(c.left);
    }
    std::vector<std::string> out;
    for (int i = 0; i >= 0; i = sym[i].next) out.push_back(word.substr(sym[i].start, sym[i].len));
    return out;
  }

  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> pieces_;
  std::unordered_map<std::string, int> ranks_;
  std::string pre_name_;  // the GGUF name of the pre-tokenizer, "" when it is none GGUF names
  std::vector<std::pair<std::string, int>> added_;
  std::vector<int32_t> special_ids_, prefix_ids_, suffix_ids_;
  std::vector<NormalizerStep> normalizers_;
  std::vector<PreTokenizerStep> pre_;
  bool byte_level_ = false, byte_fallback_ = false, ignore_merges_ = false;
  bool byte_level_decode_ = false, metaspace_decode_ = false, strip_leading_space_ = false, prepend_first_ = false;
  bool template_bos_ = false;
  int32_t unk_id_ = -1;
};

}  // namespace

Result<std::unique_ptr<Tokenizer>> make_hf_tokenizer(const json& j, const json& cfg, const std::string& where) {
  auto tok = std::make_unique<HfBpeTokenizer>();
  try {
    POCKETLLM_RETURN_IF_ERROR(tok->load(j, cfg, where));
  } catch (const json::exception& e) {
    return corrupt(where + ": " + e.what());
  }
  return std::unique_ptr<Tokenizer>(std::move(tok));
}


bool pre_tokenizer_for_gguf(const std::string& pre, json* out) {
  const json byte_level_no_regex = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}};
  auto split = [&](const char* pattern) {
    return json{{"type", "Sequence"},
                {"pretokenizers",
                 {{{"type", "Split"}, {"pattern", {{"Regex", pattern}}}, {"behavior", "Isolated"}, {"invert", false}},
                  byte_level_no_regex}}};
  };
  if (pre == "gpt-2" || pre == "gpt2" || pre == "default" || pre.empty()) {
    *out = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  } else if (pre == "llama-bpe" || pre == "llama3") {
    *out = split(kLlama3Pattern);
  } else if (pre == "qwen2") {
    *out = split(kQwen2Pattern);
  } else {
    return false;
  }
  return true;
}

bool bpe_vocab_of(const Tokenizer& t, BpeVocab* out) {
  const auto* h = dynamic_cast<const HfBpeTokenizer*>(&t);
  return h != nullptr && h->export_vocab(out);
}

Result<std::unique_ptr<Tokenizer>> load_hf_tokenizer(const std::string& tokenizer_json, const std::string& tokenizer_config) {
  auto text = read_file(tokenizer_json, size_t{1} << 30);
  if (!text) return text.status();
  json j = parse_json(text.value());
  if (j.is_discarded() || !j.is_object() || !j.contains("model")) return corrupt(tokenizer_json + ": not a tokenizer.json");
  json cfg;
  if (!tokenizer_config.empty()) {
    auto c = read_file(tokenizer_config, size_t{1} << 26);
    if (c.is_ok()) cfg = parse_json(c.value());
    if (cfg.is_discarded()) return corrupt(tokenizer_config + ": not valid JSON");
  }
  auto tok = std::make_unique<HfBpeTokenizer>();
  try {
    POCKETLLM_RETURN_IF_ERROR(tok->load(j, cfg, tokenizer_json));
  } catch (const json::exception& e) {
    return corrupt(tokenizer_json + ": " + e.what());
  }
  return std::unique_ptr<Tokenizer>(std::move(tok));
}

}  // namespace pocketllm
