// Splitting option lists ("a,b,c", "x=1;y=2") the way every list option of the CLI and the run spec reads them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pocketllm {

// The items of `s` between `sep` characters, in order, empty ones included ("a,,b" -> a, "", b); a
// separator at the very end ends the list ("a,b," -> a, b), and "" has no items.
inline std::vector<std::string> split_list(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < s.size()) {
    size_t at = s.find(sep, start);
    if (at == std::string_view::npos) at = s.size();
    out.emplace_back(s.substr(start, at - start));
    start = at + 1;
  }
  return out;
}

}  // namespace pocketllm
