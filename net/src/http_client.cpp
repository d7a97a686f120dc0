#include "pocketllm/net/http_client.h"

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <optional>

#include "pocketllm/common/sha256.h"
#include "pocketllm/net/cert_pins.h"

namespace pocketllm::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {
// The DER encoding of an OpenSSL object (a certificate, a public key), empty when it fails.
template <class T>
std::string der_of(const T* object, int (*encode)(const T*, unsigned char**)) {
  unsigned char* der = nullptr;
  const int n = object ? encode(object, &der) : 0;
  if (n <= 0) return {};
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(n));
  OPENSSL_free(der);
  return out;
}
}  // namespace

Result<ParsedUrl> parse_url(const std::string& url) {
  ParsedUrl u;
  std::string rest;
  if (url.rfind("https://", 0) == 0) {
    rest = url.substr(8);
  } else if (url.rfind("http://", 0) == 0) {
    u.tls = false;
    rest = url.substr(7);
  } else {
    return invalid_argument("server URL must start with https:// or http://: " + url);
  }
  rest = rest.substr(0, rest.find('/'));
  if (rest.empty()) return invalid_argument("server URL has no host: " + url);
  size_t colon = rest.rfind(':');
  if (!rest.empty() && rest[0] == '[') {  // [v6]:port
    const size_t close = rest.find(']');
    if (close == std::string::npos) return invalid_argument("bad IPv6 host in " + url);
    u.host = rest.substr(1, close - 1);
    colon = rest.find(':', close);
  } else {
    u.host = rest.substr(0, colon);
  }
  u.port = colon == std::string::npos ? (u.tls ? "443" : "80") : rest.substr(colon + 1);
  if (u.port.empty() || u.port.size() > 5 || u.port.find_first_not_of("0123456789") != std::string::npos)
    return invalid_argument("bad port in " + url);
  return u;
}

struct HttpClient::Impl {
  ClientOptions options;
  ParsedUrl url;
  asio::io_context ioc;
  ssl::context ctx{ssl::context::tls_client};
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;
  uint64_t sent_closed = 0, received_closed = 0;  // totals of connections already closed
  uint64_t plain_sent = 0, plain_received = 0;
  std::string verify_problem;

  // Runs one asynchronous operation to completion on this thread, so the stream's timer applies.
  template <class Start>
  beast::error_code run(Start&& start, size_t* bytes = nullptr) {
    beast::error_code result;
    size_t n = 0;
    start([&result, &n](beast::error_code e, size_t k) {
      result = e;
      n = k;
    });
    ioc.restart();
    ioc.run();
    if (bytes) *bytes = n;
    return result;
  }
  static std::string describe(const beast::error_code& ec) {
    return ec == beast::error::timeout ? std::string("timed out") : ec.message();
  }

  bool connected() const { return plain.has_value() || secure.has_value(); }
  beast::tcp_stream& tcp() { return secure ? beast::get_lowest_layer(*secure) : *plain; }

  std::pair<uint64_t, uint64_t> live_counts() const {
    if (secure) {
      SSL* s = const_cast<beast::ssl_stream<beast::tcp_stream>&>(*secure).native_handle();
      return {BIO_number_written(SSL_get_wbio(s)), BIO_number_read(SSL_get_rbio(s))};
    }
    return {plain_sent, plain_received};
  }

  void disconnect() {
    if (!connected()) return;
    const auto [s, r] = live_counts();
    sent_closed += s;
    received_closed += r;
    beast::error_code ec;
    tcp().socket().shutdown(tcp::socket::shutdown_both, ec);
    tcp().socket().close(ec);
    secure.reset();
    plain.reset();
    plain_sent = plain_received = 0;
    buffer.clear();
  }

  Status connect() {
    tcp::resolver resolver(ioc);
    beast::error_code ec;
    auto endpoints = resolver.resolve(url.host, url.port, ec);
    if (ec) return io_error("cannot resolve " + url.host + ": " + ec.message());
    if (url.tls) {
      secure.emplace(ioc, ctx);
      SSL* s = secure->native_handle();
      boost::system::error_code ip_ec;
      asio::ip::make_address(url.host, ip_ec);
      const bool is_ip = !ip_ec;
      if (!is_ip) SSL_set_tlsext_host_name(s, url.host.c_str());
      if (options.pinned_sha256.empty()) {
        X509_VERIFY_PARAM* param = SSL_get0_param(s);
        if (is_ip) X509_VERIFY_PARAM_set1_ip_asc(param, url.host.c_str());
        else X509_VERIFY_PARAM_set1_host(param, url.host.c_str(), 0);
      }
    } else {
      plain.emplace(ioc);
    }
    tcp().expires_after(std::chrono::milliseconds(options.connect_timeout_ms));
    ec = run([&](auto done) { tcp().async_connect(endpoints, [done](beast::error_code e, const tcp::endpoint&) { done(e, 0); }); });
    if (ec) {
      disconnect();
      return io_error("cannot connect to " + url.host + ":" + url.port + ": " + describe(ec));
    }
    if (secure) {
      verify_problem.clear();
      tcp().expires_after(std::chrono::milliseconds(options.connect_timeout_ms));
      ec = run([&](auto done) { secure->async_handshake(ssl::stream_base::client, [done](beast::error_code e) { done(e, 0); }); });
      if (ec) {
        std::string why = verify_problem.empty() ? ec.message() : verify_problem;
        const long vr = SSL_get_verify_result(secure->native_handle());
        if (verify_problem.empty() && vr != X509_V_OK) why = X509_verify_cert_error_string(vr);
        disconnect();
        return mismatch("TLS handshake with " + url.host + ":" + url.port + " failed: " + why);
      }
    }
    return Status::ok();
  }

  template <class Stream>
  Status exchange(Stream& stream, http::request<http::string_body>& req, HttpResult* out) {
    beast::error_code ec;
    tcp().expires_after(std::chrono::milliseconds(options.io_timeout_ms));
    size_t wrote = 0, read = 0;
    ec = run([&](auto done) { http::async_write(stream, req, done); }, &wrote);
    if (ec) return io_error("sending to " + url.host + ": " + describe(ec));
    http::response_parser<http::string_body> parser;
    parser.body_limit(uint64_t{1} << 32);
    tcp().expires_after(std::chrono::milliseconds(options.io_timeout_ms));
    ec = run([&](auto done) { http::async_read(stream, buffer, parser, done); }, &read);
    if (ec) return io_error("receiving from " + url.host + ": " + describe(ec));
    plain_sent += wrote;
    plain_received += read;
    auto& res = parser.get();
    out->status = static_cast<int>(res.result_int());
    out->body = std::move(res.body());
    for (const auto& field : res) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out->headers[name] = std::string(field.value());
    }
    if (!res.keep_alive()) disconnect();
    return Status::ok();
  }
};

HttpClient::HttpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpClient::~HttpClient() {
  if (impl_) impl_->disconnect();
}

Result<std::unique_ptr<HttpClient>> HttpClient::create(const ClientOptions& options) {
  auto url = parse_url(options.url);
  if (!url) return url.status();
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->url = url.value();
  if (impl->url.tls) {
    SSL_CTX_set_min_proto_version(impl->ctx.native_handle(), TLS1_2_VERSION);
    beast::error_code ec;
    auto pins = parse_pins(options.pinned_sha256);
    if (!pins) return invalid_argument("pinned_sha256: " + pins.status().message());
    if (!pins->empty()) {
      impl->ctx.set_verify_mode(ssl::verify_peer);
      Impl* raw = impl.get();
      // The pins replace chain and name checks: only the leaf's certificate or key digest decides.
      impl->ctx.set_verify_callback([raw, pins = pins.value()](bool, ssl::verify_context& vc) {
        X509_STORE_CTX* store = vc.native_handle();
        if (X509_STORE_CTX_get_error_depth(store) > 0) return true;
        X509* cert = X509_STORE_CTX_get_current_cert(store);
        const std::string cert_der = der_of(cert, i2d_X509), spki_der = der_of(X509_get_X509_PUBKEY(cert), i2d_X509_PUBKEY);
        if (cert_der.empty() || spki_der.empty()) return false;
        if (pins.accepts(cert_der, spki_der)) return true;
        raw->verify_problem = "the server's certificate (key pin " + key_pin(spki_der) + ", certificate SHA-256 " + cert_pin(cert_der) +
                              ") matches none of the pinned ones";
        return false;
      });
    } else {
      impl->ctx.set_verify_mode(ssl::verify_peer);
      if (!options.ca_file.empty()) impl->ctx.load_verify_file(options.ca_file, ec);
      else impl->ctx.set_default_verify_paths(ec);
      if (ec) return invalid_argument("cannot load CA certificates" + (options.ca_file.empty() ? std::string() : " from " + options.ca_file) + ": " + ec.message());
    }
  }
  return std::unique_ptr<HttpClient>(new HttpClient(std::move(impl)));
}

Result<HttpResult> HttpClient::request(const std::string& method, const std::string& target, const std::string& body,
                                       const std::string& bearer, const std::string& content_type) {
  Impl& d = *impl_;
  const http::verb verb = http::string_to_verb(method);
  if (verb == http::verb::unknown) return invalid_argument("unknown HTTP method " + method);
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool reused = d.connected();
    if (!reused) POCKETLLM_RETURN_IF_ERROR(d.connect());
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, d.url.host + ":" + d.url.port);
    req.set(http::field::user_agent, "pocketllm/0.1");
    if (!bearer.empty()) req.set(http::field::authorization, "Bearer " + bearer);
    if (!body.empty() || verb == http::verb::post) {
      req.set(http::field::content_type, content_type);
      req.body() = body;
    }
    req.keep_alive(true);
    req.prepare_payload();
    HttpResult out;
    Status s = d.secure ? d.exchange(*d.secure, req, &out) : d.exchange(*d.plain, req, &out);
    if (s) return out;
    d.disconnect();
    if (!reused) return s;  // a fresh connection failed: report it; a kept-alive one may have been closed: retry once
  }
  return io_error("unreachable");
}

void HttpClient::close() { impl_->disconnect(); }
uint64_t HttpClient::bytes_sent() const { return impl_->sent_closed + impl_->live_counts().first; }
uint64_t HttpClient::bytes_received() const { return impl_->received_closed + impl_->live_counts().second; }

}  // namespace pocketllm::net
