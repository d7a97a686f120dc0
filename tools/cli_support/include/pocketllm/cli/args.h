// A small, strict command-line parser: "--name value" or "--name=value", flags without values,
// unknown options are errors (a typo must not silently fall back to a default).
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "pocketllm/common/status.h"

namespace pocketllm::cli {

class Args {
 public:
  // value_options take a value; flag_options do not.
  Args(std::set<std::string> value_options, std::set<std::string> flag_options)
      : value_options_(std::move(value_options)), flag_options_(std::move(flag_options)) {}

  Status parse(const std::vector<std::string>& argv);

  bool has(const std::string& name) const { return values_.count(name) > 0 || flags_.count(name) > 0; }
  std::string get(const std::string& name, const std::string& fallback = "") const;
  Result<uint64_t> get_u64(const std::string& name, uint64_t fallback) const;
  Result<double> get_double(const std::string& name, double fallback) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::set<std::string> value_options_, flag_options_;
  std::map<std::string, std::string> values_;
  std::set<std::string> flags_;
  std::vector<std::string> positional_;
};

}  // namespace pocketllm::cli
