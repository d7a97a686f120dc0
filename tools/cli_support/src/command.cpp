#include "pocketllm/cli/command.h"

#include <cstdio>
#include <exception>

namespace pocketllm::cli {

Command::Command(std::string prog, const char* help, std::set<std::string> value_options, std::set<std::string> flag_options)
    : prog_(std::move(prog)), help_(help), args_(std::move(value_options), [&] {
        flag_options.insert("help");
        return std::move(flag_options);
      }()) {}

int Command::usage(const std::string& message) const {
  std::fprintf(stderr, "%s: %s (see --help)\n", prog_.c_str(), message.c_str());
  return 2;
}

int Command::fail(const std::string& message) const {
  std::fprintf(stderr, "%s: %s\n", prog_.c_str(), message.c_str());
  return 1;
}

int Command::run(const std::vector<std::string>& argv, const std::function<int(const Args&)>& body) {
  if (Status s = args_.parse(argv); !s) {
    std::fprintf(stderr, "%s: %s\n\n%s", prog_.c_str(), s.message().c_str(), help_);
    return 2;
  }
  if (args_.has("help")) {
    std::fputs(help_, stdout);
    return 0;
  }
  try {
    return body(args_);
  } catch (const std::exception& e) {
    return fail(std::string("internal error: ") + e.what());
  }
}

}  // namespace pocketllm::cli
