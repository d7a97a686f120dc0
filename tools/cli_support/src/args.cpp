#include "pocketllm/cli/args.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace pocketllm::cli {

Status Args::parse(const std::vector<std::string>& argv) {
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a.size() < 3 || a.compare(0, 2, "--") != 0) {
      positional_.push_back(a);
      continue;
    }
    std::string name = a.substr(2), value;
    const size_t eq = name.find('=');
    const bool inline_value = eq != std::string::npos;
    if (inline_value) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (flag_options_.count(name)) {
      if (inline_value) return invalid_argument("option --" + name + " takes no value");
      flags_.insert(name);
    } else if (value_options_.count(name)) {
      if (!inline_value) {
        if (i + 1 >= argv.size()) return invalid_argument("option --" + name + " needs a value");
        value = argv[++i];
      }
      values_[name] = value;
    } else {
      return invalid_argument("unknown option --" + name + " (see --help)");
    }
  }
  return Status::ok();
}

std::string Args::get(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

Result<uint64_t> Args::get_u64(const std::string& name, uint64_t fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  const std::string& s = it->second;
  if (s.empty() || s[0] == '-' || s[0] == '+') return invalid_argument("--" + name + ": '" + s + "' is not a non-negative integer");
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 0);
  if (end == s.c_str() || *end != '\0') return invalid_argument("--" + name + ": '" + s + "' is not a non-negative integer");
  if (errno == ERANGE) return invalid_argument("--" + name + ": '" + s + "' is out of range");
  if (errno != 0) return invalid_argument("--" + name + ": '" + s + "' is not a non-negative integer");
  return static_cast<uint64_t>(v);
}

Result<double> Args::get_double(const std::string& name, double fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  const std::string& s = it->second;
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (errno != 0 || end == s.c_str() || *end != '\0' || !std::isfinite(v))
    return invalid_argument("--" + name + ": '" + s + "' is not a finite number");
  return v;
}

}  // namespace pocketllm::cli
