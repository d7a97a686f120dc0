#include "pocketllm/federation/https_transport.h"

#include "pocketllm/net/http_client.h"

namespace pocketllm {
namespace {

class HttpsTransport : public Transport {
 public:
  explicit HttpsTransport(std::unique_ptr<net::HttpClient> c) : c_(std::move(c)) {}
  Result<TransportReply> request(const std::string& method, const std::string& target, const std::string& body,
                                 const std::string& bearer) override {
    auto r = c_->request(method, target, body, bearer);
    if (!r) return r.status();
    return TransportReply{r->status, std::move(r->body), std::move(r->headers)};
  }
  uint64_t bytes_sent() const override { return c_->bytes_sent(); }
  uint64_t bytes_received() const override { return c_->bytes_received(); }
  void disconnect() override { c_->close(); }

 private:
  std::unique_ptr<net::HttpClient> c_;
};

}  // namespace

Result<std::unique_ptr<Transport>> make_https_transport(const ServerConnection& s) {
  net::ClientOptions o;
  o.url = s.url;
  o.ca_file = s.ca_file;
  o.pinned_sha256 = s.pinned_sha256;
  o.connect_timeout_ms = s.timeout_ms;
  o.io_timeout_ms = s.timeout_ms;
  auto client = net::HttpClient::create(o);
  if (!client) return client.status();
  return std::unique_ptr<Transport>(std::make_unique<HttpsTransport>(std::move(client.value())));
}

}  // namespace pocketllm
