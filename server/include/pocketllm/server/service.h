// The aggregation service: tasks, rounds, submissions, the update log, snapshots, devices and auth,
// behind one handle(request) -> response entry point (the JSON API of docs/protocol.md). State lives in
// memory and in the SQLite store; every 2xx that changes state is committed first. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "pocketllm/common/status.h"
#include "pocketllm/common/thread_pool.h"
#include "pocketllm/server/http_types.h"
#include "pocketllm/server/metrics.h"
#include "pocketllm/server/rate_limiter.h"
#include "pocketllm/server/rounds.h"
#include "pocketllm/server/store.h"
#include "pocketllm/server/task_spec.h"

namespace pocketllm::server {

struct ServiceOptions {
  std::string store_path = "pocketllm-server.db";
  Durability durability = Durability::kFull;
  std::string admin_token_sha256;     // hex SHA-256 of the admin bearer token (required)
  double device_rate_per_s = 20;      // per-device request rate (token bucket); 0 = unlimited
  double device_burst = 40;
  size_t max_log_page = 10000;        // entries per /log page
  int snapshot_threads = 1;
  std::function<int64_t()> clock_ms;  // wall clock in ms since the epoch (tests substitute their own)
  std::function<void(const std::string&)> log;  // operator log lines; never carries secrets or data
};

class Service {
 public:
  static Result<std::unique_ptr<Service>> open(ServiceOptions options);
  ~Service();

  HttpResponse handle(const HttpRequest& request);
  // Closes due rounds (applying, extending or abandoning them) and opens the next ones.
  void tick();
  Metrics& metrics() { return metrics_; }

 private:
  struct Task;
  struct Device {
    std::string secret_sha256;
    bool revoked = false;
  };
  explicit Service(ServiceOptions options);
  Status load();
  Status load_task(const StoredTask& stored);
  static Status load_weights(Task* t);
  int64_t now_ms() const { return opt_.clock_ms(); }
  void log(const std::string& line) const {
    if (opt_.log) opt_.log(line);
  }
  void tick_task(Task& task, int64_t now);

  // Routing and endpoints (api.cpp).
  HttpResponse route(const HttpRequest& req, const std::string& path, const std::map<std::string, std::string>& query);
  enum class Caller { kNone, kAdmin, kDevice };
  struct Auth {
    Caller caller = Caller::kNone;
    std::string device;
    int status = 401;
    std::string error;
  };
  Auth authenticate(const HttpRequest& req);
  HttpResponse create_task(const std::string& body);
  HttpResponse create_enrol_token(const std::string& body);
  HttpResponse enrol(const std::string& body);
  HttpResponse revoke(const std::string& device);
  HttpResponse list_tasks();
  HttpResponse get_task(const std::string& id);
  HttpResponse close_round(const std::string& task, const std::string& round);
  HttpResponse get_round(const std::string& task, const std::string& round, bool admin);
  HttpResponse submit(const std::string& task, const std::string& round, const std::string& device, const std::string& body);
  HttpResponse get_log(const std::string& task, const std::map<std::string, std::string>& query);
  HttpResponse get_snapshot(const std::string& task, const std::map<std::string, std::string>& query);
  HttpResponse render_metrics();

  ServiceOptions opt_;
  std::unique_ptr<Store> store_;
  Metrics metrics_;
  std::unique_ptr<RateLimiter> limiter_;
  std::unique_ptr<ThreadPool> pool_;
  std::mutex mu_;  // guards everything below and the store
  std::map<std::string, std::unique_ptr<Task>> tasks_;
  std::map<std::string, Device> devices_;
};

}  // namespace pocketllm::server
