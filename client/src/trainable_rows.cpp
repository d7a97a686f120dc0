#include "pocketllm/client/trainable_rows.h"

#include <algorithm>
#include <cstdlib>

#include "pocketllm/client/model.h"
#include "pocketllm/client/task.h"
#include "pocketllm/common/name_pattern.h"
#include "pocketllm/common/split.h"

namespace pocketllm {
namespace {

struct RowItem {
  std::string pattern, rows;
};

Result<std::vector<RowItem>> split_items(const std::string& spec) {
  std::vector<RowItem> out;
  for (const std::string& item : split_list(spec, ';')) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size())
      return invalid_argument("trainable rows '" + item + "' is not PATTERN=ROWS");
    out.push_back({item.substr(0, eq), item.substr(eq + 1)});
  }
  return out;
}

bool is_sample(const std::string& rows) { return rows == "sample" || rows.rfind("sample:", 0) == 0; }

// Parses "0-99,311" into flags over `n` rows.
Status parse_row_list(const std::string& item, const std::string& list, size_t n, std::vector<uint8_t>* mask) {
  mask->assign(n, 0);
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    const std::string range = list.substr(start, comma - start);
    start = comma + 1;
    const size_t dash = range.find('-');
    const std::string a = range.substr(0, dash), b = dash == std::string::npos ? a : range.substr(dash + 1);
    auto number = [](const std::string& s, size_t* v) {
      if (s.empty() || s.size() > 12 || s.find_first_not_of("0123456789") != std::string::npos) return false;
      *v = static_cast<size_t>(std::strtoull(s.c_str(), nullptr, 10));
      return true;
    };
    size_t lo = 0, hi = 0;
    if (!number(a, &lo) || !number(b, &hi) || lo > hi)
      return invalid_argument("trainable rows '" + item + "': '" + range + "' is not a row or a range LO-HI");
    if (hi >= n)
      return invalid_argument("trainable rows '" + item + "': row " + std::to_string(hi) + " is out of range (the tensor has " +
                              std::to_string(n) + " rows)");
    std::fill(mask->begin() + static_cast<long>(lo), mask->begin() + static_cast<long>(hi) + 1, uint8_t{1});
    if (comma == list.size()) break;
  }
  return Status::ok();
}

std::string row_list(const std::vector<uint8_t>& mask) {
  std::string out;
  for (size_t r = 0; r < mask.size();) {
    if (!mask[r]) {
      ++r;
      continue;
    }
    size_t e = r;
    while (e + 1 < mask.size() && mask[e + 1]) ++e;
    out += (out.empty() ? "" : ",") + std::to_string(r) + (e > r ? "-" + std::to_string(e) : "");
    r = e + 1;
  }
  return out;
}

}  // namespace

bool trainable_rows_need_sample(const std::string& spec) {
  auto items = split_items(spec);
  if (!items) return false;
  for (const auto& it : items.value())
    if (is_sample(it.rows)) return true;
  return false;
}

Result<std::string> resolve_trainable_rows(const LanguageModel& model, const std::string& spec, const Task* task,
                                           const std::vector<size_t>& sample) {
  auto items = split_items(spec);
  if (!items) return items.status();
  const size_t vocab = static_cast<size_t>(model.config().vocab_size);
  std::string out;
  for (const auto& it : items.value()) {
    std::string rows = it.rows;
    if (is_sample(it.rows)) {
      size_t min_count = 1;
      if (it.rows.size() > 7) {
        const std::string m = it.rows.substr(7);
        if (m.empty() || m.size() > 9 || m.find_first_not_of("0123456789") != std::string::npos || std::stoul(m) == 0)
          return invalid_argument("trainable rows '" + it.pattern + "=" + it.rows + "': MIN in sample:MIN must be a count ≥ 1");
        min_count = std::stoul(m);
      }
      if (task == nullptr) return invalid_argument("trainable rows '" + it.pattern + "=" + it.rows + "' need the training data");
      const NamePatterns names(expand_trainable(it.pattern, model.config().num_layers));
      size_t hit = 0;
      for (const auto& w : model.weights().all()) {
        if (!w->trainable || !names.matches(w->name)) continue;
        ++hit;
        if (w->rows() != vocab)
          return invalid_argument("trainable rows '" + it.pattern + "=" + it.rows + "': the rows of " + w->name +
                                  " are not token ids (" + std::to_string(w->rows()) + " rows, vocabulary " + std::to_string(vocab) + ")");
      }
      if (hit == 0) return invalid_argument("trainable rows '" + it.pattern + "=" + it.rows + "' select no trainable tensor");
      std::vector<size_t> counts(vocab, 0);
      for (size_t i : sample)
        for (int32_t t : task->example_tokens(i))
          if (t >= 0 && static_cast<size_t>(t) < vocab) ++counts[static_cast<size_t>(t)];
      std::vector<uint8_t> mask(vocab, 0);
      for (size_t t = 0; t < vocab; ++t) mask[t] = counts[t] >= min_count;
      for (int32_t t : task->answer_tokens())
        if (t >= 0 && static_cast<size_t>(t) < vocab) mask[static_cast<size_t>(t)] = 1;
      rows = row_list(mask);
      if (rows.empty()) return invalid_argument("trainable rows '" + it.pattern + "=" + it.rows + "': no token occurs often enough");
    }
    out += (out.empty() ? "" : ";") + it.pattern + "=" + rows;
  }
  return out;
}

Status apply_trainable_rows(LanguageModel& model, const std::string& resolved) {
  auto items = split_items(resolved);
  if (!items) return items.status();
  for (const auto& it : items.value()) {
    const std::string item = it.pattern + "=" + it.rows;
    if (is_sample(it.rows)) return invalid_argument("trainable rows '" + item + "' are not resolved against a training sample");
    const NamePatterns names(expand_trainable(it.pattern, model.config().num_layers));
    size_t hit = 0;
    for (const auto& w : model.weights().all()) {
      if (!w->trainable || !names.matches(w->name)) continue;
      std::vector<uint8_t> mask;
      POCKETLLM_RETURN_IF_ERROR(parse_row_list(item, it.rows, w->rows(), &mask));
      w->row_mask = std::move(mask);
      ++hit;
    }
    if (hit == 0) return invalid_argument("trainable rows '" + item + "' select no trainable tensor");
  }
  return Status::ok();
}

}  // namespace pocketllm
