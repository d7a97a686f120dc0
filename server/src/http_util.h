// Small pieces of HTTP handling the service's endpoints share: JSON replies, protocol errors, the
// request target split into path segments and query parameters. No network library.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "pocketllm/protocol/messages.h"
#include "pocketllm/server/http_types.h"

namespace pocketllm::server {

HttpResponse json_response(int status, const nlohmann::json& body);
// {"error": {"code", "message"}} with the code's status (docs/protocol.md section 1).
HttpResponse error(protocol::ErrorCode code, const std::string& message);
HttpResponse error_reply(const protocol::ErrorReply& e);

// Parses a JSON object body, or says precisely why not (400 malformed_json).
bool parse_body(const std::string& body, nlohmann::json* out, HttpResponse* err);

bool parse_u64(const std::string& s, uint64_t* out);

// The request target as routed: path segments (percent-decoded each, after splitting on the raw '/',
// so an encoded slash never separates segments) and the decoded query. False when malformed.
struct Target {
  std::vector<std::string> segments;
  std::map<std::string, std::string> query;
};
bool parse_target(const std::string& target, Target* out);

}  // namespace pocketllm::server
