// Strict numbers for the bench tools' options: "--reps abc", "--reps 0" or "--batch -1" is a usage error
// (exit 2) naming the option, never an atoi 0 that crashes or silently measures something else.
#pragma once

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace pocketllm::bench {

inline long int_arg(const char* option, const std::string& text, long lo, long hi) {
  errno = 0;
  char* end = nullptr;
  const long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || v < lo || v > hi) {
    std::fprintf(stderr, "%s must be an integer %ld..%ld, not '%s'\n", option, lo, hi, text.c_str());
    std::exit(2);
  }
  return v;
}

inline double number_arg(const char* option, const std::string& text, double lo, double hi) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !(v >= lo && v <= hi)) {
    std::fprintf(stderr, "%s must be a number in [%g, %g], not '%s'\n", option, lo, hi, text.c_str());
    std::exit(2);
  }
  return v;
}

}  // namespace pocketllm::bench
