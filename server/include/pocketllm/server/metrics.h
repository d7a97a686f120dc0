// Prometheus metrics of the server (text exposition format 0.0.4): requests by route and status, a
// request-latency histogram, rounds by outcome, submissions by result, and gauges the service supplies.
// Thread-safe.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace pocketllm::server {

class Metrics {
 public:
  void observe_request(const std::string& route, int status, double seconds);
  void count_submission(const std::string& result);  // accepted, duplicate or a rejection reason
  void count_round(const std::string& outcome);      // applied, extended, abandoned
  void count_store_error();                          // a store operation that failed
  void count_tls_reload(bool ok);                    // a SIGHUP's certificate reload, loaded or kept the old
  void set_tls_expiry(double unix_seconds);          // the served certificate's notAfter
  // Renders everything, with the gauges given as (name, help, value).
  std::string render(const std::vector<std::pair<std::string, double>>& gauges) const;

  static const std::vector<double>& latency_buckets();

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::vector<uint64_t> latency_counts_ = std::vector<uint64_t>(latency_buckets().size() + 1, 0);
  double latency_sum_ = 0;
  uint64_t latency_count_ = 0;
  std::map<std::string, uint64_t> submissions_, rounds_;
  uint64_t store_errors_ = 0;
  uint64_t tls_reloads_ok_ = 0, tls_reloads_failed_ = 0;
  double tls_expiry_ = 0;  // 0: not serving TLS
};

}  // namespace pocketllm::server
