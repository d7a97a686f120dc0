// The listening socket: binds, writes the port file, and accepts connections into sessions until
// closed. Included only by http_server.cpp.
#pragma once

#include <boost/asio/strand.hpp>

#include "pocketllm/common/file_util.h"
#include "session.h"

namespace pocketllm::server::http_front {

class Listener {
 public:
  Listener(asio::io_context& ioc, Shared& shared, ssl::context& tls) : ioc_(ioc), shared_(shared), tls_(tls), acceptor_(asio::make_strand(ioc)) {}

  // Binds and listens; the bound port (useful with port 0) is written to the port file.
  Status open(const HttpServerOptions& o) {
    beast::error_code ec;
    const auto address = asio::ip::make_address(o.address, ec);
    if (ec) return invalid_argument("bad listen address " + o.address);
    const tcp::endpoint endpoint(address, o.port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return io_error("cannot listen on " + o.address + ":" + std::to_string(o.port) + ": " + ec.message());
    port_ = acceptor_.local_endpoint().port();
    if (!o.port_file.empty()) POCKETLLM_RETURN_IF_ERROR(write_file_atomic(o.port_file, std::to_string(port_) + "\n"));
    return Status::ok();
  }
  uint16_t port() const { return port_; }

  void accept() {
    acceptor_.async_accept(asio::make_strand(ioc_), [this](beast::error_code e, tcp::socket socket) {
      if (e) {
        if (!shared_.stopping) accept();
        return;
      }
      beast::error_code nd;
      socket.set_option(tcp::no_delay(true), nd);
      if (shared_.options.tls) std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(shared_, std::move(socket), tls_)->start();
      else std::make_shared<Session<beast::tcp_stream>>(shared_, std::move(socket))->start();
      accept();
    });
  }

  void close() {
    asio::post(acceptor_.get_executor(), [this] {
      beast::error_code c;
      acceptor_.close(c);
    });
  }

 private:
  asio::io_context& ioc_;
  Shared& shared_;
  ssl::context& tls_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
};

}  // namespace pocketllm::server::http_front
