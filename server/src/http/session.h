// One HTTP/1.1 connection of the network front (plain TCP or TLS). Included only by session_plain.cpp and
// session_tls.cpp, one instantiation each: the server TUs that compile Boost.Beast's HTTP (the two
// together took 65 s in one TU with GCC and 195 s under clang's ASan, the longest step of those builds).
#pragma once

#include <openssl/ssl.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/http/span_body.hpp>
#include <boost/beast/ssl.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "../http_util.h"
#include "pocketllm/server/http_options.h"
#include "pocketllm/server/service.h"
#include "shared_state.h"

namespace pocketllm::server::http_front {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

template <class Stream>
beast::tcp_stream& lowest(Stream& s) {
  return beast::get_lowest_layer(s);
}

template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  // `tls` is the context a TLS stream is made with (null for plain TCP): the session holds it, so a
  // reload on SIGHUP never takes it from a connection in use.
  template <class... Args>
  Session(Shared& shared, std::string address, std::shared_ptr<ssl::context> tls, Args&&... args)
      : shared_(shared), address_(std::move(address)), tls_(std::move(tls)), stream_(std::forward<Args>(args)...) {
    ++shared_.sessions;
  }
  ~Session() {
    shared_.release(address_);
    // A session can outlive the server loop (destroyed with the io_context): `drained` is cleared then.
    if (--shared_.sessions == 0 && shared_.stopping) {
      std::lock_guard<std::mutex> lock(shared_.drained_mu);
      if (shared_.drained) shared_.drained();
    }
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
    // Until it has made an authenticated request, a connection may not idle long between requests.
    const int idle_ms = authenticated_ || requests_ == 0 ? shared_.options.header_timeout_ms
                                                         : std::min(shared_.options.header_timeout_ms, shared_.options.unauthenticated_idle_ms);
    lowest(stream_).expires_after(std::chrono::milliseconds(idle_ms));
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
    if (ec && ec.category() == beast::error_code(http::error::bad_method).category() && ec != http::error::end_of_stream &&
        ec != http::error::partial_message)
      return reply_error(protocol::ErrorCode::kMalformedRequest, "the request is not valid HTTP/1.1: " + ec.message());
    if (ec) return close();  // the peer went away, timed out or broke TLS: nobody to answer
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
    beast::error_code peer_ec;
    const auto peer = lowest(stream_).socket().remote_endpoint(peer_ec);
    r.remote_address = peer_ec ? "unknown" : peer.address().to_string();
    ++requests_;
    r.content_type = std::string(req[http::field::content_type]);
    r.body = std::move(req.body());
    const bool keep_alive = req.keep_alive() && !shared_.stopping;
    auto self = this->shared_from_this();
    auto sent = std::make_shared<std::atomic<bool>>(false);
    const std::string request_id = request_id_of(req["X-Request-Id"]);
    const auto started = std::chrono::steady_clock::now();
    auto reply = [self, keep_alive, sent, request_id, started, method = r.method, remote = r.remote_address](HttpResponse out) {
      if (sent->exchange(true)) return;  // one reply per request, whatever happens
      out.headers.emplace_back("X-Request-Id", request_id);
      if (self->shared_.options.access_log && self->shared_.options.log) {
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
        self->shared_.options.log(nlohmann::json{{"msg", "request"}, {"request_id", request_id}, {"method", method},
                                                 {"route", out.route.empty() ? std::string("?") : out.route}, {"status", out.status},
                                                 {"ms", std::round(ms * 1000) / 1000}, {"remote", remote}}
                                      .dump());
      }
      // May run on the committer thread: the write happens on this session's strand.
      asio::post(lowest(self->stream_).get_executor(), [self, keep_alive, out = std::move(out)]() mutable {
        self->authenticated_ = self->authenticated_ || out.authenticated;
        self->send(std::move(out), keep_alive);
      });
    };
    try {
      shared_.service.handle_async(r, reply);
    } catch (const std::exception& e) {  // a bug must cost one request, never the process
      HttpResponse out;
      out.status = 500;
      out.body = "{\"error\":{\"code\":\"internal\",\"message\":\"internal error\"}}\n";
      if (shared_.options.log) shared_.options.log("internal error while handling request " + request_id + ": " + e.what());
      reply(std::move(out));
    }
  }

  // The client's X-Request-Id when it is a sane token, else one made here (a process-wide prefix and a
  // counter: unique per server run, cheap).
  static std::string request_id_of(boost::beast::string_view given) {
    if (!given.empty() && given.size() <= 64 &&
        std::all_of(given.begin(), given.end(), [](char ch) { return std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' || ch == '-'; }))
      return std::string(given);
    static const std::string prefix = [] {
      std::random_device rd;
      char b[16];
      std::snprintf(b, sizeof b, "%08x", rd());
      return std::string(b);
    }();
    static std::atomic<uint64_t> counter{0};
    return prefix + "-" + std::to_string(++counter);
  }

  void reply_error(protocol::ErrorCode code, const std::string& message) {
    HttpResponse r = error(code, message);
    shared_.service.metrics().observe_request("limits", r.status, 0.0);
    send(std::move(r), false, true);  // the rest of the request is unread: the connection cannot be reused
  }

  void send(HttpResponse out, bool keep_alive, bool drain = false) {
    if (out.shared_body) {  // a shared body (snapshots) is sent from where it is, never copied per reply
      auto res = std::make_shared<http::response<http::span_body<const char>>>(static_cast<http::status>(out.status), 11);
      res->body() = boost::beast::span<const char>(out.shared_body->data(), out.shared_body->size());
      return write(std::move(res), std::move(out), keep_alive, drain);
    }
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(out.status), 11);
    res->body() = std::move(out.body);
    write(std::move(res), std::move(out), keep_alive, drain);
  }

  template <class Response>
  void write(std::shared_ptr<Response> res, HttpResponse out, bool keep_alive, bool drain) {
    res->set(http::field::server, "pocketllm-server");
    res->set(http::field::content_type, out.content_type);
    for (const auto& [k, v] : out.headers) res->set(k, v);
    res->keep_alive(keep_alive);
    res->prepare_payload();
    lowest(stream_).expires_after(std::chrono::milliseconds(shared_.options.body_timeout_ms));
    http::async_write(stream_, *res, [self = this->shared_from_this(), res, body = out.shared_body, keep_alive, drain](beast::error_code ec, size_t) {
      if (!ec && drain) return self->drain(0);
      if (ec || !keep_alive) return self->close();
      self->read_head();
    });
  }

  // After an early error reply, reads and discards what the client is still sending (bounded in bytes
  // and time) before closing, so the client gets to read the reply instead of a connection reset.
  void drain(size_t discarded) {
    constexpr size_t kMaxDrain = 8 << 20;
    if (discarded == 0) drain_until_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(shared_.options.drain_timeout_ms);
    if (discarded > kMaxDrain || std::chrono::steady_clock::now() > drain_until_) return close();  // a trickle cannot hold it
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
  std::string address_;
  std::shared_ptr<ssl::context> tls_;  // before stream_: outlives it
  Stream stream_;
  std::chrono::steady_clock::time_point drain_until_;
  bool authenticated_ = false;
  uint64_t requests_ = 0;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool waiting_ = false;
};

}  // namespace pocketllm::server::http_front
