// pocketllm-server: the aggregation server's command-line entry point.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <iostream>

#include <nlohmann/json.hpp>
#include <mutex>
#include <string>

#include "admin_cli.h"
#include "pocketllm/common/sha256.h"
#include "pocketllm/server/config.h"
#include "pocketllm/server/http_server.h"
#include "pocketllm/server/service.h"

using namespace pocketllm;
using namespace pocketllm::server;

namespace {
std::mutex log_mu;
bool log_json = false;

// A log line: "<UTC time> <message>", or with --log-format json one object {"ts", "level", "msg"}; a
// message that is itself a JSON object (the access log's) gets "ts" and "level" added to its fields.
void log_line(const std::string& line) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  char stamp[40];
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string text;
  if (log_json) {
    nlohmann::json j = line.size() > 1 && line.front() == '{' ? nlohmann::json::parse(line, nullptr, false) : nlohmann::json();
    if (!j.is_object()) j = {{"msg", line}};
    char full[48];
    std::snprintf(full, sizeof full, "%s.%03dZ", stamp, static_cast<int>(ms));
    j["ts"] = full;
    const bool error = line.rfind("ERROR", 0) == 0;
    const bool warn = line.rfind("WARNING", 0) == 0 || line.find("failed") != std::string::npos || line.find("unavailable") != std::string::npos;
    j["level"] = j.contains("status") ? (j["status"].get<int>() >= 500 ? "error" : "info") : error ? "error" : warn ? "warning" : "info";
    text = j.dump();
  } else {
    text = std::string(stamp) + "Z " + line;
  }
  std::lock_guard<std::mutex> lock(log_mu);
  std::fprintf(stderr, "%s\n", text.c_str());
}
}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "admin") return run_admin_cli(std::vector<std::string>(args.begin() + 1, args.end()));
  if (!args.empty() && args[0] == "routes") {  // the API's routes, one "METHOD /path/{param}" a line
    for (const auto& [method, pattern] : Service::route_list()) std::printf("%s %s\n", method.c_str(), pattern.c_str());
    return 0;
  }
  if (!args.empty() && args[0] == "hash-token") {
    std::string token;
    std::getline(std::cin, token);
    while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
    std::printf("%s\n", to_hex(sha256(token)).c_str());
    return 0;
  }
  auto config = parse_server_config(args);
  if (!config) {
    std::fprintf(stderr, "pocketllm-server: %s\n", config.status().message().c_str());
    return 2;
  }
  if (config->help) {
    std::fputs(server_usage(), stdout);
    return 0;
  }
  ServerConfig c = std::move(config.value());
  // A file-size limit (ulimit -f) reached by the store's files must fail the write (EFBIG: the request
  // gets 503 store_unavailable and the operator an ERROR line), not kill the process as SIGXFSZ would.
  std::signal(SIGXFSZ, SIG_IGN);
  log_json = c.log_json;
  c.service.log = log_line;
  c.service.background_unmasking = true;  // a big masked round never holds the other requests up
  c.http.log = log_line;
  if (c.insecure) log_line("WARNING: --insecure: serving plain HTTP; credentials and scalars cross the network unencrypted");
  auto service = Service::open(c.service);
  if (!service) {
    std::fprintf(stderr, "pocketllm-server: %s\n", service.status().to_string().c_str());
    return 1;
  }
  Status s = run_http_server(c.http, *service.value());
  if (!s) {
    std::fprintf(stderr, "pocketllm-server: %s\n", s.to_string().c_str());
    return 1;
  }
  return 0;
}
