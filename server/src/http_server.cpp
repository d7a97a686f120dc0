#include "pocketllm/server/http_server.h"

#include "http_util.h"

#include <openssl/ssl.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "pocketllm/common/file_util.h"

namespace pocketllm::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

// What every session shares.
struct Shared {
  Shared(const HttpServerOptions& o, Service& s) : options(o), service(s) {}
  const HttpServerOptions& options;
  Service& service;
  std::atomic<bool> stopping{false};
  std::mutex mu;
  std::set<std::shared_ptr<void>> idle;  // sessions waiting for a request head, closed on shutdown
  std::atomic<int> sessions{0};
  std::function<void()> drained;  // called when stopping and the last session has ended
};

template <class Stream>
beast::tcp_stream& lowest(Stream& s) {
  return beast::get_lowest_layer(s);
}

template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  template <class... Args>
  Session(Shared& shared, Args&&... args) : shared_(shared), stream_(std::forward<Args>(args)...) { ++shared_.sessions; }
  ~Session() {
    if (--shared_.sessions == 0 && shared_.stopping) shared_.drained();
  }

  void start() {
    if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
      lowest(stream_).expires_after(std::chrono::milliseconds(shared_.options.header_timeout_ms));
      stream_.async_handshake(ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code ec) {
        if (!ec) self->read_head();
      });
    } else {
      read_head();
    }
  }

  // Called on shutdown for sessions between requests.
  void close_idle() {
    asio::post(lowest(stream_).get_executor(), [self = this->shared_from_this()] {
      if (self->waiting_) lowest(self->stream_).cancel();
    });
  }

 private:
  void read_head() {
    if (shared_.stopping) return;
    parser_.emplace();
    parser_->header_limit(shared_.options.max_header_bytes);
    parser_->body_limit(shared_.options.max_body_bytes);
    lowest(stream_).expires_after(std::chrono::milliseconds(shared_.options.header_timeout_ms));
    waiting_ = true;
    {
      std::lock_guard<std::mutex> lock(shared_.mu);
      shared_.idle.insert(this->shared_from_this());
    }
    http::async_read_header(stream_, buffer_, *parser_, [self = this->shared_from_this()](beast::error_code ec, size_t) {
      self->waiting_ = false;
      {
        std::lock_guard<std::mutex> lock(self->shared_.mu);
        self->shared_.idle.erase(self);
      }
      self->on_head(ec);
    });
  }

  void on_head(beast::error_code ec) {
    if (ec == http::error::header_limit) return reply_error(protocol::ErrorCode::kRequestHeaderTooLarge, "the request head is too large");
    if (ec == http::error::body_limit)  // a declared Content-Length over the limit is caught with the head
      return reply_error(protocol::ErrorCode::kBodyTooLarge, "the body is larger than " + std::to_string(shared_.options.max_body_bytes) + " bytes");
    if (ec) return close();
    const auto length = parser_->content_length();
    if (length && *length > shared_.options.max_body_bytes)
      return reply_error(protocol::ErrorCode::kBodyTooLarge, "the body is larger than " + std::to_string(shared_.options.max_body_bytes) + " bytes");
    lowest(stream_).expires_after(std::chrono::milliseconds(shared_.options.body_timeout_ms));
    http::async_read(stream_, buffer_, *parser_, [self = this->shared_from_this()](beast::error_code e, size_t) { self->on_body(e); });
  }

  void on_body(beast::error_code ec) {
    if (ec == http::error::body_limit)
      return reply_error(protocol::ErrorCode::kBodyTooLarge, "the body is larger than " + std::to_string(shared_.options.max_body_bytes) + " bytes");
    if (ec) return close();
    auto& req = parser_->get();
    HttpRequest r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    r.authorization = std::string(req[http::field::authorization]);
    r.content_type = std::string(req[http::field::content_type]);
    r.body = std::move(req.body());
    const bool keep_alive = req.keep_alive() && !shared_.stopping;
    auto self = this->shared_from_this();
    auto sent = std::make_shared<std::atomic<bool>>(false);
    auto reply = [self, keep_alive, sent](HttpResponse out) {
      if (sent->exchange(true)) return;  // one reply per request, whatever happens
      // May run on the committer thread: the write happens on this session's strand.
      asio::post(lowest(self->stream_).get_executor(),
                 [self, keep_alive, out = std::move(out)]() mutable { self->send(std::move(out), keep_alive); });
    };
    try {
      shared_.service.handle_async(r, reply);
    } catch (const std::exception& e) {  // a bug must cost one request, never the process
      HttpResponse out;
      out.status = 500;
      out.body = "{\"error\":{\"code\":\"internal\",\"message\":\"internal error\"}}\n";
      if (shared_.options.log) shared_.options.log(std::string("internal error while handling a request: ") + e.what());
      reply(std::move(out));
    }
  }

  void reply_error(protocol::ErrorCode code, const std::string& message) {
    HttpResponse r = error(code, message);
    shared_.service.metrics().observe_request("limits", r.status, 0.0);
    send(std::move(r), false, true);  // the rest of the request is unread: the connection cannot be reused
  }

  void send(HttpResponse out, bool keep_alive, bool drain = false) {
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(out.status), 11);
    res->set(http::field::server, "pocketllm-server");
    res->set(http::field::content_type, out.content_type);
    for (const auto& [k, v] : out.headers) res->set(k, v);
    res->body() = std::move(out.body);
    res->keep_alive(keep_alive);
    res->prepare_payload();
    lowest(stream_).expires_after(std::chrono::milliseconds(shared_.options.body_timeout_ms));
    http::async_write(stream_, *res, [self = this->shared_from_this(), res, keep_alive, drain](beast::error_code ec, size_t) {
      if (!ec && drain) return self->drain(0);
      if (ec || !keep_alive) return self->close();
      self->read_head();
    });
  }

  // After an early error reply, reads and discards what the client is still sending (bounded in bytes
  // and time) before closing, so the client gets to read the reply instead of a connection reset.
  void drain(size_t discarded) {
    constexpr size_t kMaxDrain = 8 << 20;
    if (discarded > kMaxDrain) return close();
    buffer_.consume(buffer_.size());
    lowest(stream_).expires_after(std::chrono::seconds(2));
    stream_.async_read_some(buffer_.prepare(64 << 10), [self = this->shared_from_this(), discarded](beast::error_code ec, size_t n) {
      self->buffer_.commit(n);
      if (ec) return self->close();
      self->drain(discarded + n);
    });
  }

  void close() {
    beast::error_code ec;
    if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
      lowest(stream_).expires_after(std::chrono::seconds(2));
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) {
        beast::error_code e;
        lowest(self->stream_).socket().close(e);
      });
    } else {
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
      stream_.socket().close(ec);
    }
  }

  Shared& shared_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool waiting_ = false;
};

}  // namespace

// long: TLS context, listener, ticker and signal-driven shutdown wired together on one io_context; to be split into their own files.
Status run_http_server(const HttpServerOptions& o, Service& service) {
  auto log = [&](const std::string& line) {
    if (o.log) o.log(line);
  };
  asio::io_context ioc(std::max(1, o.threads));
  ssl::context ctx(ssl::context::tls_server);
  if (o.tls) {
    SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
    ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 | ssl::context::single_dh_use);
    beast::error_code ec;
    ctx.use_certificate_chain_file(o.cert_file, ec);
    if (ec) return invalid_argument("TLS certificate " + o.cert_file + ": " + ec.message());
    ctx.use_private_key_file(o.key_file, ssl::context::pem, ec);
    if (ec) return invalid_argument("TLS key " + o.key_file + ": " + ec.message());
  }
  beast::error_code ec;
  const auto address = asio::ip::make_address(o.address, ec);
  if (ec) return invalid_argument("bad listen address " + o.address);
  tcp::acceptor acceptor(asio::make_strand(ioc));
  const tcp::endpoint endpoint(address, o.port);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return io_error("cannot listen on " + o.address + ":" + std::to_string(o.port) + ": " + ec.message());
  const uint16_t port = acceptor.local_endpoint().port();
  if (!o.port_file.empty()) POCKETLLM_RETURN_IF_ERROR(write_file_atomic(o.port_file, std::to_string(port) + "\n"));
  log(std::string("listening on ") + (o.tls ? "https://" : "http://") + o.address + ":" + std::to_string(port) + " with " +
      std::to_string(o.threads) + " threads");

  Shared shared(o, service);
  std::function<void()> accept;
  accept = [&] {
    acceptor.async_accept(asio::make_strand(ioc), [&](beast::error_code e, tcp::socket socket) {
      if (e) {
        if (!shared.stopping) accept();
        return;
      }
      beast::error_code nd;
      socket.set_option(tcp::no_delay(true), nd);
      if (o.tls) std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(shared, std::move(socket), ctx)->start();
      else std::make_shared<Session<beast::tcp_stream>>(shared, std::move(socket))->start();
      accept();
    });
  };
  accept();

  asio::steady_timer ticker(ioc);
  std::function<void()> tick;
  tick = [&] {
    ticker.expires_after(std::chrono::milliseconds(o.tick_ms));
    ticker.async_wait([&](beast::error_code e) {
      if (e || shared.stopping) return;
      try {
        service.tick();
      } catch (const std::exception& ex) {
        log(std::string("internal error in the round ticker: ") + ex.what());
      }
      tick();
    });
  };
  tick();

  auto grace_strand = asio::make_strand(ioc);
  asio::steady_timer grace(grace_strand);
  shared.drained = [&] { asio::post(grace_strand, [&] { grace.cancel(); }); };
  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](beast::error_code e, int signo) {
    if (e) return;
    log(std::string("received ") + (signo == SIGTERM ? "SIGTERM" : "SIGINT") + ": finishing in-flight requests");
    shared.stopping = true;
    asio::post(acceptor.get_executor(), [&] {
      beast::error_code c;
      acceptor.close(c);
    });
    ticker.cancel();
    std::vector<std::shared_ptr<void>> idle;
    {
      std::lock_guard<std::mutex> lock(shared.mu);
      idle.assign(shared.idle.begin(), shared.idle.end());
    }
    for (auto& s : idle) {
      if (o.tls) std::static_pointer_cast<Session<beast::ssl_stream<beast::tcp_stream>>>(s)->close_idle();
      else std::static_pointer_cast<Session<beast::tcp_stream>>(s)->close_idle();
    }
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
  log("stopped");
  return Status::ok();
}

}  // namespace pocketllm::server
