// Token buckets by key (device id): `rate` requests per second on average, bursts up to `burst`.
// Thread-safe. Idle buckets are dropped so the map stays bounded by the active devices.
#pragma once

#include <mutex>
#include <string>
#include <unordered_map>

namespace pocketllm::server {

class RateLimiter {
 public:
  RateLimiter(double rate, double burst) : rate_(rate), burst_(burst) {}
  // True when the request may proceed; otherwise *retry_after_s says when one token is back.
  bool allow(const std::string& key, double now_s, double* retry_after_s);
  // True when `key` has no token left (nothing is consumed); *retry_after_s as for allow.
  bool exhausted(const std::string& key, double now_s, double* retry_after_s);

 private:
  struct Bucket {
    double tokens;
    double last_s;
  };
  double rate_, burst_;
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
  double last_sweep_s_ = 0;
};

}  // namespace pocketllm::server
