#include "pocketllm/server/rate_limiter.h"

#include <algorithm>

namespace pocketllm::server {

bool RateLimiter::allow(const std::string& key, double now_s, double* retry_after_s) {
  if (rate_ <= 0) return true;  // limiting off
  std::lock_guard<std::mutex> lock(mu_);
  if (now_s - last_sweep_s_ > 60) {  // a bucket idle long enough to be full again carries no state
    for (auto it = buckets_.begin(); it != buckets_.end();)
      it = (now_s - it->second.last_s) * rate_ >= burst_ ? buckets_.erase(it) : std::next(it);
    last_sweep_s_ = now_s;
  }
  auto [it, fresh] = buckets_.try_emplace(key, Bucket{burst_, now_s});
  Bucket& b = it->second;
  b.tokens = std::min(burst_, b.tokens + std::max(0.0, now_s - b.last_s) * rate_);
  b.last_s = now_s;
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return true;
  }
  if (retry_after_s) *retry_after_s = (1.0 - b.tokens) / rate_;
  return false;
}

bool RateLimiter::exhausted(const std::string& key, double now_s, double* retry_after_s) {
  if (rate_ <= 0) return false;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = buckets_.find(key);
  if (it == buckets_.end()) return false;
  const double tokens = std::min(burst_, it->second.tokens + std::max(0.0, now_s - it->second.last_s) * rate_);
  if (tokens >= 1.0) return false;
  if (retry_after_s) *retry_after_s = (1.0 - tokens) / rate_;
  return true;
}

}  // namespace pocketllm::server
