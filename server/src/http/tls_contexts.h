// The server's TLS context, replaceable while it runs: SIGHUP reads the certificate chain and key
// again (a renewed certificate goes live without a restart). A connection keeps the context it began
// with; a reload that fails keeps the one in use. Included only by http_server.cpp.
#pragma once

#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <boost/asio/ssl.hpp>
#include <memory>
#include <mutex>
#include <string>

#include "pocketllm/common/status.h"
#include "pocketllm/net/cert_pins.h"
#include "pocketllm/server/http_options.h"

namespace pocketllm::server::http_front {

// The served certificate, as an operator checks it.
struct CertificateFacts {
  std::string subject;     // RFC 2253, e.g. CN=fed.example
  int64_t not_after = 0;   // Unix seconds
  std::string key_pin;     // sha256/BASE64 of the public key: what devices pin (net/cert_pins.h)
};

class TlsContexts {
 public:
  explicit TlsContexts(const HttpServerOptions& o) : o_(o) {}

  // Builds a context from the files; on success it serves every connection accepted from now on.
  Status load() {
    auto ctx = std::make_shared<boost::asio::ssl::context>(boost::asio::ssl::context::tls_server);
    CertificateFacts facts;
    POCKETLLM_RETURN_IF_ERROR(configure(ctx.get(), &facts));
    std::lock_guard<std::mutex> lock(mu_);
    current_ = std::move(ctx);
    facts_ = facts;
    return Status::ok();
  }
  std::shared_ptr<boost::asio::ssl::context> current() const {
    std::lock_guard<std::mutex> lock(mu_);
    return current_;
  }
  CertificateFacts facts() const {
    std::lock_guard<std::mutex> lock(mu_);
    return facts_;
  }

  // "<lead>TLS certificate CN=…, valid until 2027-03-01 12:00:00 UTC", a WARNING line when it has
  // expired or expires within 14 days.
  static std::string describe(const std::string& lead, const CertificateFacts& f, int64_t now) {
    char until[32] = "?";
    const time_t t = static_cast<time_t>(f.not_after);
    struct tm tm_utc {};
    if (gmtime_r(&t, &tm_utc)) std::strftime(until, sizeof until, "%Y-%m-%d %H:%M:%S UTC", &tm_utc);
    const std::string line = lead + "TLS certificate " + f.subject + " (key pin " + f.key_pin + "), valid until " + until;
    const int64_t left = f.not_after - now;
    if (left <= 0) return "WARNING: " + line + ": it has EXPIRED, devices will refuse the connection";
    if (left < 14 * 86400) {
      const int64_t days = left / 86400, hours = left / 3600;
      const std::string in = days >= 2 ? std::to_string(days) + " days" : hours >= 2 ? std::to_string(hours) + " hours" : "less than 2 hours";
      return "WARNING: " + line + ": it expires in " + in;
    }
    return line;
  }

 private:
  Status configure(boost::asio::ssl::context* ctx, CertificateFacts* facts) const {
    namespace ssl = boost::asio::ssl;
    SSL_CTX* native = ctx->native_handle();
    SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 | ssl::context::single_dh_use);
    POCKETLLM_RETURN_IF_ERROR(readable("TLS certificate", o_.cert_file));
    POCKETLLM_RETURN_IF_ERROR(readable("TLS key", o_.key_file));
    // An encrypted key is refused, never a passphrase prompt on the terminal (a reload would hang there).
    ctx->set_password_callback([](std::size_t, ssl::context::password_purpose) { return std::string(); });
    boost::system::error_code ec;
    ctx->use_certificate_chain_file(o_.cert_file, ec);
    if (ec) return invalid_argument("TLS certificate " + o_.cert_file + ": " + ec.message() + " (expected a PEM certificate chain, the server's first)");
    ctx->use_private_key_file(o_.key_file, ssl::context::pem, ec);
    if (ec) return invalid_argument("TLS key " + o_.key_file + ": " + ec.message() + " (expected the certificate's PEM private key, unencrypted)");
    if (SSL_CTX_check_private_key(native) != 1)
      return invalid_argument("TLS key " + o_.key_file + " does not belong to the certificate in " + o_.cert_file);
    X509* cert = SSL_CTX_get0_certificate(native);
    if (!cert) return invalid_argument("TLS certificate " + o_.cert_file + ": no certificate in the file");
    struct tm tm_utc {};
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm_utc) != 1)
      return invalid_argument("TLS certificate " + o_.cert_file + ": unreadable expiry date");
    facts->not_after = static_cast<int64_t>(timegm(&tm_utc));
    BIO* bio = BIO_new(BIO_s_mem());
    if (bio) {
      X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
      char* data = nullptr;
      const long n = BIO_get_mem_data(bio, &data);
      if (n > 0) facts->subject.assign(data, static_cast<size_t>(n));
      BIO_free(bio);
    }
    if (facts->subject.empty()) facts->subject = "(no subject)";
    unsigned char* spki = nullptr;
    const int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &spki);
    if (n <= 0) return invalid_argument("TLS certificate " + o_.cert_file + ": unreadable public key");
    facts->key_pin = net::key_pin(std::string_view(reinterpret_cast<char*>(spki), static_cast<size_t>(n)));
    OPENSSL_free(spki);
    return Status::ok();
  }

  // OpenSSL says only "asio.ssl error" for a file it cannot open: the system's reason instead.
  static Status readable(const std::string& what, const std::string& path) {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) return invalid_argument(what + " " + path + ": " + std::strerror(errno));
    std::fclose(f);
    return Status::ok();
  }

  const HttpServerOptions& o_;
  mutable std::mutex mu_;
  std::shared_ptr<boost::asio::ssl::context> current_;
  CertificateFacts facts_;
};

}  // namespace pocketllm::server::http_front
