// Tensor-name patterns, as training specs use them to select trainable tensors:
// '*' matches any run of characters (dots included), '?' one character; a list is comma-separated
// and a name is selected when any pattern in it matches.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pocketllm {

bool glob_match(std::string_view pattern, std::string_view name);

class NamePatterns {
 public:
  NamePatterns() = default;
  explicit NamePatterns(std::string_view comma_separated);
  bool matches(std::string_view name) const;
  bool empty() const { return patterns_.empty(); }
  const std::vector<std::string>& patterns() const { return patterns_; }

 private:
  std::vector<std::string> patterns_;
};

}  // namespace pocketllm
