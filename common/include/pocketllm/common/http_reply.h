// An HTTP reply as plain data (status, body, headers), shared by the HTTPS client (net/) and the
// federation module's transport interface, which must not depend on each other. No network code.
#pragma once

#include <map>
#include <string>

namespace pocketllm {

struct HttpReply {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

}  // namespace pocketllm
