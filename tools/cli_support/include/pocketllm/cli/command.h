// What every command-line front end repeats, written once: parse the options, answer --help, report a
// usage error (exit 2) or a failure (exit 1) with the program's name, and never let an exception out.
#pragma once

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "pocketllm/cli/args.h"
#include "pocketllm/common/status.h"

namespace pocketllm::cli {

class Command {
 public:
  // `prog` prefixes every message ("pocketllm eval"); `help` is printed for --help and after a parse error.
  Command(std::string prog, const char* help, std::set<std::string> value_options, std::set<std::string> flag_options = {});

  const Args& args() const { return args_; }
  // "prog: message (see --help)" on stderr; returns 2.
  int usage(const std::string& message) const;
  // "prog: message" on stderr; returns 1.
  int fail(const std::string& message) const;
  int fail(const Status& s) const { return fail(s.to_string()); }

  // Parses `argv` and runs `body` unless --help was asked for (0) or the options are malformed (2);
  // an exception from `body` is reported as an internal error (1).
  int run(const std::vector<std::string>& argv, const std::function<int(const Args&)>& body);

 private:
  std::string prog_;
  const char* help_;
  Args args_;
};

}  // namespace pocketllm::cli
