// Reading users' training data: plain text (one example per line), JSONL ({"text"} or
// {"prompt","completion"}, optionally "label"), and TSV (text<TAB>label, with or without a header).
// Every malformed line is an error naming the file and line number.
#pragma once

#include <string>
#include <vector>

#include "pocketllm/common/status.h"
#include "pocketllm/common/utf8.h"  // is_valid_utf8, used with the data

namespace pocketllm {

struct TextExample {
  std::string text;        // the text, or the prompt when completion is set
  std::string completion;  // LM: loss only on this part when non-empty
  std::string label;       // classification
  int line = 0;            // 1-based line in the source file
};

struct DatasetOptions {
  bool need_label = false;
  bool skip_empty = true;  // empty lines are skipped (and counted); else an error
};

struct Dataset {
  std::vector<TextExample> examples;
  int skipped_empty = 0;
  std::string path;
};

// Format from the extension: .jsonl/.json, .tsv, anything else plain text.
Result<Dataset> load_dataset(const std::string& path, const DatasetOptions& options);
Result<Dataset> parse_dataset(const std::string& content, const std::string& format, const std::string& display_name,
                              const DatasetOptions& options);

// Words in a text: maximal runs of characters other than ASCII space, tab, CR, LF, VT and FF (what awk's
// default field splitting counts).
int count_words(const std::string& text);

// Keeps the examples whose text (the prompt, for prompt/completion pairs) has at least `min_words` words,
// in order; returns how many were dropped. An error when none is left. min_words <= 0 keeps everything.
Result<int> drop_short_examples(Dataset* data, int min_words);

}  // namespace pocketllm
