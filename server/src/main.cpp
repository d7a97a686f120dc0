// pocketllm-server: the aggregation server's command-line entry point.
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
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
void log_line(const std::string& line) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  char stamp[32];
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::lock_guard<std::mutex> lock(log_mu);
  std::fprintf(stderr, "%s %s\n", stamp, line.c_str());
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
