#include "pocketllm/client/dataset.h"
#include "pocketllm/common/json_util.h"

#include <nlohmann/json.hpp>

#include "pocketllm/common/file_util.h"

namespace pocketllm {

Result<Dataset> parse_dataset(const std::string& content, const std::string& format, const std::string& name,
                              const DatasetOptions& o) {
  Dataset ds;
  ds.path = name;
  size_t start = 0;
  int line_no = 0;
  bool first = true;
  while (start < content.size()) {
    size_t end = content.find('\n', start);
    if (end == std::string::npos) end = content.size();
    std::string line = content.substr(start, end - start);
    start = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::string where = name + ":" + std::to_string(line_no);
    if (!is_valid_utf8(line)) return corrupt(where + ": not valid UTF-8");
    const bool blank = line.find_first_not_of(" \t") == std::string::npos;
    if (blank) {
      if (o.skip_empty) {
        ++ds.skipped_empty;
        continue;
      }
      return corrupt(where + ": empty line");
    }
    TextExample ex;
    ex.line = line_no;
    if (format == "jsonl") {
      auto j = parse_json(line);
      if (j.is_discarded() || !j.is_object()) return corrupt(where + ": not a JSON object");
      auto str = [&](const char* key, std::string* out) -> Status {
        if (!j.contains(key)) return Status::ok();
        if (j[key].is_string()) *out = j[key].get<std::string>();
        else if (j[key].is_number_integer()) *out = std::to_string(j[key].get<int64_t>());
        else return corrupt(where + ": \"" + key + "\" must be a string");
        return Status::ok();
      };
      POCKETLLM_RETURN_IF_ERROR(str("text", &ex.text));
      if (ex.text.empty()) POCKETLLM_RETURN_IF_ERROR(str("sentence", &ex.text));
      if (ex.text.empty()) POCKETLLM_RETURN_IF_ERROR(str("prompt", &ex.text));
      POCKETLLM_RETURN_IF_ERROR(str("completion", &ex.completion));
      POCKETLLM_RETURN_IF_ERROR(str("label", &ex.label));
      if (ex.text.empty() && ex.completion.empty())
        return corrupt(where + ": needs \"text\", \"sentence\" or \"prompt\"");
    } else if (format == "tsv") {
      const size_t tab = line.find('\t');
      if (first) {
        first = false;
        const std::string head = line.substr(0, tab);
        if (head == "sentence" || head == "text") continue;  // header row
      }
      if (tab == std::string::npos) {
        if (o.need_label) return corrupt(where + ": missing the label column (expected text<TAB>label)");
        ex.text = line;
      } else {
        ex.text = line.substr(0, tab);
        ex.label = line.substr(tab + 1);
        const size_t extra = ex.label.find('\t');
        if (extra != std::string::npos) ex.label = ex.label.substr(0, extra);
      }
      while (!ex.text.empty() && ex.text.back() == ' ') ex.text.pop_back();
      while (!ex.label.empty() && (ex.label.back() == ' ' || ex.label.back() == '\t')) ex.label.pop_back();
    } else {
      ex.text = line;
    }
    first = false;
    if (o.need_label && ex.label.empty()) return corrupt(where + ": missing label");
    ds.examples.push_back(std::move(ex));
  }
  if (ds.examples.empty()) return invalid_argument(name + ": no examples");
  return ds;
}

Result<Dataset> load_dataset(const std::string& path, const DatasetOptions& o) {
  auto content = read_file(path, size_t{1} << 32);
  if (!content) return content.status();
  auto ends = [&](const char* ext) {
    const std::string e(ext);
    return path.size() >= e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0;
  };
  const std::string format = ends(".jsonl") || ends(".json") ? "jsonl" : ends(".tsv") ? "tsv" : "text";
  return parse_dataset(content.value(), format, path, o);
}

int count_words(const std::string& text) {
  int words = 0;
  bool in_word = false;
  for (char c : text) {
    const bool blank = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
    if (!blank && !in_word) ++words;
    in_word = !blank;
  }
  return words;
}

Result<int> drop_short_examples(Dataset* data, int min_words) {
  if (min_words <= 0) return 0;
  const size_t before = data->examples.size();
  std::vector<TextExample> kept;
  kept.reserve(before);
  for (auto& ex : data->examples)
    if (count_words(ex.text) >= min_words) kept.push_back(std::move(ex));
  data->examples = std::move(kept);
  if (data->examples.empty())
    return invalid_argument(data->path + ": none of its " + std::to_string(before) + " examples has " + std::to_string(min_words) +
                            " or more words (--min-words)");
  return static_cast<int>(before - data->examples.size());
}

}  // namespace pocketllm
