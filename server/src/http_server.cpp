// The network front, wired together: TLS context, listener, ticker, and the graceful shutdown on
// SIGTERM/SIGINT. The one server TU that compiles Boost.Beast (with http/*.h).
#include "pocketllm/server/http_server.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <thread>
#include <vector>

#include "http/listener.h"
#include "http/session.h"
#include "http/ticker.h"

namespace pocketllm::server {

using namespace http_front;

namespace {

Status configure_tls(const HttpServerOptions& o, ssl::context* ctx) {
  if (!o.tls) return Status::ok();
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 | ssl::context::single_dh_use);
  beast::error_code ec;
  ctx->use_certificate_chain_file(o.cert_file, ec);
  if (ec) return invalid_argument("TLS certificate " + o.cert_file + ": " + ec.message());
  ctx->use_private_key_file(o.key_file, ssl::context::pem, ec);
  if (ec) return invalid_argument("TLS key " + o.key_file + ": " + ec.message());
  return Status::ok();
}

// Closes the sessions waiting between requests; the others finish their request first.
void close_idle_sessions(Shared& shared) {
  std::vector<std::shared_ptr<void>> idle;
  {
    std::lock_guard<std::mutex> lock(shared.mu);
    idle.assign(shared.idle.begin(), shared.idle.end());
  }
  for (auto& s : idle) {
    if (shared.options.tls) std::static_pointer_cast<Session<beast::ssl_stream<beast::tcp_stream>>>(s)->close_idle();
    else std::static_pointer_cast<Session<beast::tcp_stream>>(s)->close_idle();
  }
}

}  // namespace

Status run_http_server(const HttpServerOptions& o, Service& service) {
  auto log = [&](const std::string& line) {
    if (o.log) o.log(line);
  };
  // Declared before the io_context: sessions still queued in it when it is destroyed can reach it.
  Shared shared(o, service);
  asio::io_context ioc(std::max(1, o.threads));
  ssl::context ctx(ssl::context::tls_server);
  POCKETLLM_RETURN_IF_ERROR(configure_tls(o, &ctx));
  Listener listener(ioc, shared, ctx);
  POCKETLLM_RETURN_IF_ERROR(listener.open(o));
  log(std::string("listening on ") + (o.tls ? "https://" : "http://") + o.address + ":" + std::to_string(listener.port()) + " with " +
      std::to_string(o.threads) + " threads, at most " + std::to_string(listener.max_connections()) + " connections (" +
      std::to_string(o.max_connections_per_address) + " per address)");
  listener.accept();
  Ticker ticker(ioc, shared);
  ticker.start();

  // Shutdown: stop accepting and ticking, close idle sessions, give the others the grace period.
  auto grace_strand = asio::make_strand(ioc);
  asio::steady_timer grace(grace_strand);
  {
    std::lock_guard<std::mutex> lock(shared.drained_mu);
    shared.drained = [&] { asio::post(grace_strand, [&] { grace.cancel(); }); };
  }
  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](beast::error_code e, int signo) {
    if (e) return;
    log(std::string("received ") + (signo == SIGTERM ? "SIGTERM" : "SIGINT") + ": finishing in-flight requests");
    shared.stopping = true;
    listener.close();
    ticker.cancel();
    close_idle_sessions(shared);
    asio::post(grace_strand, [&] {
      grace.expires_after(std::chrono::milliseconds(o.shutdown_grace_ms));
      grace.async_wait([&](beast::error_code g) {
        if (!g) {
          log("grace period over: stopping");
          ioc.stop();
        }
      });
      if (shared.sessions == 0) grace.cancel();
    });
  });

  std::vector<std::thread> threads;
  for (int i = 1; i < o.threads; ++i) threads.emplace_back([&] { ioc.run(); });
  // Work ends when the acceptor, ticker and all sessions are done; the grace timer bounds the wait.
  ioc.run();
  service.flush();  // submissions still in a group commit finish before the io_context goes away
  for (auto& t : threads) t.join();
  {
    std::lock_guard<std::mutex> lock(shared.drained_mu);
    shared.drained = nullptr;  // the grace timer goes away before the sessions the io_context still holds
  }
  log("stopped");
  return Status::ok();
}

}  // namespace pocketllm::server
