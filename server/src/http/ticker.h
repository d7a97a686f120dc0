// Calls Service::tick every tick_ms on the io_context (rounds closing at their deadlines) until
// cancelled. Included only by http_server.cpp.
#pragma once

#include <malloc.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>

#include "shared_state.h"

namespace pocketllm::server::http_front {

class Ticker {
 public:
  Ticker(boost::asio::io_context& ioc, Shared& shared) : shared_(shared), timer_(ioc) {}

  void start() {
    timer_.expires_after(std::chrono::milliseconds(shared_.options.tick_ms));
    timer_.async_wait([this](boost::system::error_code e) {
      if (e || shared_.stopping) return;
      try {
        shared_.service.tick();
#ifdef __GLIBC__
        // Every ~30 s, hand freed heap back to the OS (closed TLS connections leave ~70 KB each in
        // malloc's free lists otherwise, and RSS only grows after a connection burst).
        if (++ticks_ % std::max(1, 30000 / std::max(1, shared_.options.tick_ms)) == 0) malloc_trim(0);
#endif
      } catch (const std::exception& ex) {
        if (shared_.options.log) shared_.options.log(std::string("internal error in the round ticker: ") + ex.what());
      }
      start();
    });
  }
  void cancel() { timer_.cancel(); }

 private:
  Shared& shared_;
  boost::asio::steady_timer timer_;
  uint64_t ticks_ = 0;
};

}  // namespace pocketllm::server::http_front
