#include "pocketllm/server/metrics.h"

#include <cstdio>
#include <sstream>

namespace pocketllm::server {

const std::vector<double>& Metrics::latency_buckets() {
  static const std::vector<double> b = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
  return b;
}

void Metrics::observe_request(const std::string& route, int status, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{route, status}];
  size_t i = 0;
  while (i < latency_buckets().size() && seconds > latency_buckets()[i]) ++i;
  ++latency_counts_[i];
  latency_sum_ += seconds;
  ++latency_count_;
}

void Metrics::count_submission(const std::string& result) {
  std::lock_guard<std::mutex> lock(mu_);
  ++submissions_[result];
}

void Metrics::count_round(const std::string& outcome) {
  std::lock_guard<std::mutex> lock(mu_);
  ++rounds_[outcome];
}

void Metrics::count_store_error() {
  std::lock_guard<std::mutex> lock(mu_);
  ++store_errors_;
}

void Metrics::count_tls_reload(bool ok) {
  std::lock_guard<std::mutex> lock(mu_);
  ++(ok ? tls_reloads_ok_ : tls_reloads_failed_);
}

void Metrics::set_tls_expiry(double unix_seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  tls_expiry_ = unix_seconds;
}

namespace {
std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}
}  // namespace

std::string Metrics::render(const std::vector<std::pair<std::string, double>>& gauges) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::ostringstream o;
  o << "# HELP pocketllm_http_requests_total HTTP requests by route and status.\n"
       "# TYPE pocketllm_http_requests_total counter\n";
  for (const auto& [k, v] : requests_)
    o << "pocketllm_http_requests_total{route=\"" << k.first << "\",code=\"" << k.second << "\"} " << v << "\n";
  o << "# HELP pocketllm_http_request_duration_seconds Time from a complete request to its response.\n"
       "# TYPE pocketllm_http_request_duration_seconds histogram\n";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < latency_buckets().size(); ++i) {
    cumulative += latency_counts_[i];
    char le[32];
    std::snprintf(le, sizeof le, "%g", latency_buckets()[i]);
    o << "pocketllm_http_request_duration_seconds_bucket{le=\"" << le << "\"} " << cumulative << "\n";
  }
  o << "pocketllm_http_request_duration_seconds_bucket{le=\"+Inf\"} " << latency_count_ << "\n";
  o << "pocketllm_http_request_duration_seconds_sum " << num(latency_sum_) << "\n";
  o << "pocketllm_http_request_duration_seconds_count " << latency_count_ << "\n";
  o << "# HELP pocketllm_submissions_total Round submissions by result (accepted, duplicate, or the rejection reason).\n"
       "# TYPE pocketllm_submissions_total counter\n";
  for (const auto& [k, v] : submissions_) o << "pocketllm_submissions_total{result=\"" << k << "\"} " << v << "\n";
  o << "# HELP pocketllm_rounds_total Rounds closed, by outcome.\n# TYPE pocketllm_rounds_total counter\n";
  for (const auto& [k, v] : rounds_) o << "pocketllm_rounds_total{outcome=\"" << k << "\"} " << v << "\n";
  o << "# HELP pocketllm_store_errors_total Store operations that failed (each answered 503 store_unavailable or retried).\n"
       "# TYPE pocketllm_store_errors_total counter\npocketllm_store_errors_total " << store_errors_ << "\n";
  if (tls_expiry_ > 0) {
    o << "# HELP pocketllm_tls_certificate_expiry_timestamp_seconds When the served TLS certificate expires (notAfter, Unix time).\n"
         "# TYPE pocketllm_tls_certificate_expiry_timestamp_seconds gauge\npocketllm_tls_certificate_expiry_timestamp_seconds "
      << num(tls_expiry_) << "\n";
    o << "# HELP pocketllm_tls_reloads_total Certificate reloads on SIGHUP: loaded, or failed and kept the certificate in use.\n"
         "# TYPE pocketllm_tls_reloads_total counter\n"
         "pocketllm_tls_reloads_total{result=\"loaded\"} " << tls_reloads_ok_ << "\n"
         "pocketllm_tls_reloads_total{result=\"failed\"} " << tls_reloads_failed_ << "\n";
  }
  std::string family;  // one TYPE line per metric family; the service lists a family's series together
  for (const auto& [name, value] : gauges) {
    const std::string f = name.substr(0, name.find('{'));
    if (f != family) o << "# TYPE " << f << " gauge\n";
    family = f;
    o << name << " " << num(value) << "\n";
  }
  return o.str();
}

}  // namespace pocketllm::server
