// The network front, wired together: TLS context (reloaded on SIGHUP), listener, ticker, and the
// graceful shutdown on SIGTERM/SIGINT. Asio only: the sessions (Boost.Beast's HTTP) are compiled in
// http/session_plain.cpp and http/session_tls.cpp.
#include "pocketllm/server/http_server.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <mutex>
#include <ctime>
#include <thread>
#include <vector>

#include "http/listener.h"
#include "http/sessions.h"
#include "http/ticker.h"
#include "http/tls_contexts.h"

namespace pocketllm::server {

using namespace http_front;

namespace {

// Closes the sessions waiting between requests; the others finish their request first.
void close_idle_sessions(Shared& shared) {
  if (shared.options.tls) close_idle_tls_sessions(shared);
  else close_idle_plain_sessions(shared);
}

int64_t now_unix() { return static_cast<int64_t>(std::time(nullptr)); }

// SIGHUP: the certificate and key are read again (a renewed certificate, no restart); new
// connections get them, open ones keep theirs; a failed reload keeps the certificate in use.
class CertificateReloader {
 public:
  CertificateReloader(asio::io_context& ioc, const HttpServerOptions& o, TlsContexts& tls, Metrics& metrics,
                      std::function<void(const std::string&)> log)
      : signals_(ioc, SIGHUP), o_(o), tls_(tls), metrics_(metrics), log_(std::move(log)) {}

  void start() {
    signals_.async_wait([this](error_code e, int) {
      if (e) return;
      reload();
      start();
    });
  }
  void cancel() {
    error_code ignored;
    signals_.cancel(ignored);
  }

 private:
  void reload() {
    if (!o_.tls) return log_("received SIGHUP: serving plain HTTP, no certificate to reload");
    const Status st = tls_.load();
    metrics_.count_tls_reload(st.is_ok());
    if (!st) return log_("ERROR: received SIGHUP: TLS reload failed, still serving the previous certificate: " + st.message());
    metrics_.set_tls_expiry(static_cast<double>(tls_.facts().not_after));
    log_(TlsContexts::describe("received SIGHUP: new connections get the reloaded ", tls_.facts(), now_unix()));
  }

  asio::signal_set signals_;
  const HttpServerOptions& o_;
  TlsContexts& tls_;
  Metrics& metrics_;
  std::function<void(const std::string&)> log_;
};

}  // namespace

Status run_http_server(const HttpServerOptions& o, Service& service) {
  auto log = [&](const std::string& line) {
    if (o.log) o.log(line);
  };
  // Declared before the io_context: sessions still queued in it when it is destroyed can reach it.
  Shared shared(o, service);
  asio::io_context ioc(std::max(1, o.threads));
  TlsContexts tls(o);
  if (o.tls) {
    POCKETLLM_RETURN_IF_ERROR(tls.load());
    log(TlsContexts::describe("serving the ", tls.facts(), now_unix()));
    service.metrics().set_tls_expiry(static_cast<double>(tls.facts().not_after));
  }
  Listener listener(ioc, shared, tls);
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
  CertificateReloader reloader(ioc, o, tls, service.metrics(), log);
  reloader.start();
  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](error_code e, int signo) {
    if (e) return;
    log(std::string("received ") + (signo == SIGTERM ? "SIGTERM" : "SIGINT") + ": finishing in-flight requests");
    shared.stopping = true;
    reloader.cancel();
    listener.close();
    ticker.cancel();
    close_idle_sessions(shared);
    asio::post(grace_strand, [&] {
      grace.expires_after(std::chrono::milliseconds(o.shutdown_grace_ms));
      grace.async_wait([&](error_code g) {
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
