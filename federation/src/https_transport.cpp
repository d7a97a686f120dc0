#include "pocketllm/federation/https_transport.h"

#include "pocketllm/net/http_client.h"

namespace pocketllm {
namespace {

class HttpsTransport : public Transport {
 public:
  explicit HttpsTransport(std::unique_ptr<net::HttpClient> c) : c_(std::move(c)) {}
  Result<TransportReply> request(const std::string& method, const std::string& target, const std::string& body,
                                 const std::string& bearer) override {
    return c_->request(method, target, body, bearer);
  }
  uint64_t bytes_sent() const override { return c_->bytes_sent(); }
  uint64_t bytes_received() const override { return c_->bytes_received(); }
  void disconnect() override { c_->close(); }

 private:
  std::unique_ptr<net::HttpClient> c_;
};

}  // namespace

Result<std::unique_ptr<Transport>> make_https_transport(const ServerConnection& s) {
  auto client = net::HttpClient::create(net::ClientOptions{s.url, s.ca_file, s.pinned_sha256, s.timeout_ms, s.timeout_ms});
  if (!client) return client.status();
  return std::unique_ptr<Transport>(std::make_unique<HttpsTransport>(std::move(client.value())));
}

}  // namespace pocketllm
