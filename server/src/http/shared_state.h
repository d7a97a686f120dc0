// What every connection of the network front shares: the options, the service, the connection counts
// and caps, the idle sessions closed on shutdown. Free of Boost: the listener, the ticker and the
// session TUs all include it.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "pocketllm/server/http_options.h"
#include "pocketllm/server/service.h"

namespace pocketllm::server::http_front {

// What every session shares.
struct Shared {
  Shared(const HttpServerOptions& o, Service& s) : options(o), service(s) {}
  const HttpServerOptions& options;
  Service& service;
  std::atomic<bool> stopping{false};
  std::mutex mu;
  std::set<std::shared_ptr<void>> idle;  // sessions waiting for a request head, closed on shutdown
  std::atomic<int> sessions{0};
  std::map<std::string, int> per_address;  // open sessions by peer address (guarded by mu)
  std::atomic<uint64_t> refused{0};        // connections closed at accept (over a cap)

  // Admits a new connection from `address` under the caps, counting it; false: refuse it.
  bool admit(const std::string& address, int max_total) {
    std::lock_guard<std::mutex> lock(mu);
    int& n = per_address[address];
    if (sessions.load() >= max_total || n >= options.max_connections_per_address) {
      if (n == 0) per_address.erase(address);
      ++refused;
      return false;
    }
    ++n;
    return true;
  }
  // The sessions waiting between requests now (a copy: closing them changes the set).
  std::vector<std::shared_ptr<void>> idle_sessions() {
    std::lock_guard<std::mutex> lock(mu);
    return {idle.begin(), idle.end()};
  }
  void release(const std::string& address) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = per_address.find(address);
    if (it != per_address.end() && --it->second <= 0) per_address.erase(it);
  }
  std::mutex drained_mu;
  std::function<void()> drained;  // called when stopping and the last session has ended (guarded by drained_mu)
  ~Shared() {  // sessions still held here end while every member is alive
    std::set<std::shared_ptr<void>> last;
    {
      std::lock_guard<std::mutex> lock(mu);
      last.swap(idle);
    }
  }
};

}  // namespace pocketllm::server::http_front
