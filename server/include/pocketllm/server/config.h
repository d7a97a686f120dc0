// pocketllm-server's configuration: a JSON file (--config) with command-line flags overriding it.
// docs/server.md lists every key; `pocketllm-server --help` lists every flag.
#pragma once

#include <string>
#include <vector>

#include "pocketllm/common/status.h"
#include "pocketllm/server/http_options.h"
#include "pocketllm/server/service.h"

namespace pocketllm::server {

struct ServerConfig {
  HttpServerOptions http;
  ServiceOptions service;
  bool insecure = false;
  bool help = false;
  bool log_json = false;  // --log-format json: every log line a JSON object {"ts", "level", "msg", …}
};

const char* server_usage();
Result<ServerConfig> parse_server_config(const std::vector<std::string>& args);

}  // namespace pocketllm::server
