// Calls Service::tick every tick_ms on the io_context (rounds closing at their deadlines) until
// cancelled. Included only by http_server.cpp.
#pragma once

#include "session.h"

namespace pocketllm::server::http_front {

class Ticker {
 public:
  Ticker(asio::io_context& ioc, Shared& shared) : shared_(shared), timer_(ioc) {}

  void start() {
    timer_.expires_after(std::chrono::milliseconds(shared_.options.tick_ms));
    timer_.async_wait([this](beast::error_code e) {
      if (e || shared_.stopping) return;
      try {
        shared_.service.tick();
      } catch (const std::exception& ex) {
        if (shared_.options.log) shared_.options.log(std::string("internal error in the round ticker: ") + ex.what());
      }
      start();
    });
  }
  void cancel() { timer_.cancel(); }

 private:
  Shared& shared_;
  asio::steady_timer timer_;
};

}  // namespace pocketllm::server::http_front
