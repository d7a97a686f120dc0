// The listening socket: binds, writes the port file, and accepts connections into sessions until
// closed. Included only by http_server.cpp; the sessions it starts are compiled elsewhere (sessions.h).
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>

#include "pocketllm/common/file_util.h"
#include "sessions.h"
#include "tls_contexts.h"

namespace pocketllm::server::http_front {

class Listener {
 public:
  Listener(asio::io_context& ioc, Shared& shared, const TlsContexts& tls)
      : ioc_(ioc), shared_(shared), tls_(tls), acceptor_(asio::make_strand(ioc)), backoff_(acceptor_.get_executor()) {
    // Never more connections than descriptors: keep 64 for the store, logs and the listener itself.
    struct rlimit rl {};
    max_connections_ = shared.options.max_connections;
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
      max_connections_ = static_cast<int>(std::min<rlim_t>(static_cast<rlim_t>(max_connections_), rl.rlim_cur > 128 ? rl.rlim_cur - 64 : 64));
  }
  int max_connections() const { return max_connections_; }

  // Binds and listens; the bound port (useful with port 0) is written to the port file.
  Status open(const HttpServerOptions& o) {
    error_code ec;
    const auto address = asio::ip::make_address(o.address, ec);
    if (ec) return invalid_argument("bad listen address " + o.address);
    const tcp::endpoint endpoint(address, o.port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec && o.reuse_port) acceptor_.set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return io_error("cannot listen on " + o.address + ":" + std::to_string(o.port) + ": " + ec.message());
    port_ = acceptor_.local_endpoint().port();
    if (!o.port_file.empty()) POCKETLLM_RETURN_IF_ERROR(write_file_atomic(o.port_file, std::to_string(port_) + "\n"));
    return Status::ok();
  }
  uint16_t port() const { return port_; }

  void accept() {
    acceptor_.async_accept(asio::make_strand(ioc_), [this](error_code e, tcp::socket socket) {
      if (e) return on_accept_error(e);
      error_code ec;
      const auto peer = socket.remote_endpoint(ec);
      const std::string address = ec ? "unknown" : peer.address().to_string();
      if (!shared_.admit(address, max_connections_)) {
        socket.close(ec);  // over a cap: refused at once, before any TLS work
        return accept();
      }
      socket.set_option(tcp::no_delay(true), ec);
      if (shared_.options.tls) start_tls_session(shared_, address, tls_.current(), std::move(socket));  // the context of now:
      else start_plain_session(shared_, address, std::move(socket));                                    // a reload leaves it be
      accept();
    });
  }

  // Out of descriptors (EMFILE/ENFILE) or another transient error: wait before accepting again,
  // instead of spinning on an error that repeats at once.
  void on_accept_error(const error_code& e) {
    if (shared_.stopping || e == asio::error::operation_aborted) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_warning_ > std::chrono::seconds(5) && shared_.options.log) {
      shared_.options.log("accept failed (" + e.message() + "); backing off");
      last_warning_ = now;
    }
    backoff_.expires_after(std::chrono::milliseconds(100));
    backoff_.async_wait([this](error_code w) {
      if (!w && !shared_.stopping) accept();
    });
  }

  void close() {
    asio::post(acceptor_.get_executor(), [this] {
      error_code c;
      acceptor_.close(c);
    });
  }

 private:
  asio::io_context& ioc_;
  Shared& shared_;
  const TlsContexts& tls_;
  tcp::acceptor acceptor_;
  asio::steady_timer backoff_;
  std::chrono::steady_clock::time_point last_warning_;
  int max_connections_ = 0;
  uint16_t port_ = 0;
};

}  // namespace pocketllm::server::http_front
