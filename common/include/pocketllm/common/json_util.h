// Reading JSON that came from outside (requests, replies, files): its nesting is bounded before the
// parser builds anything, because nlohmann::json copies and dumps recursively — a 10^5-deep document
// would overflow the stack there. Every untrusted JSON read in the project goes through parse_json.
#pragma once

#include <nlohmann/json.hpp>

#include <string_view>

namespace pocketllm {

constexpr int kMaxJsonDepth = 64;

// Whether arrays and objects in `text` nest at most `limit` deep (strings are skipped; the text need
// not be valid JSON). Linear, no allocation.
bool json_depth_within(std::string_view text, int limit = kMaxJsonDepth);

// json::parse without exceptions: a discarded value when `text` is not JSON or nests deeper than
// `max_depth`.
nlohmann::json parse_json(std::string_view text, int max_depth = kMaxJsonDepth);

}  // namespace pocketllm
