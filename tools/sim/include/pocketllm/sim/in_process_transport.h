// A Transport that hands requests straight to an in-process Service (the simulator's fast mode, and the
// federation tests). Byte counts are those of the HTTP/1.1 messages the same exchange would put on the
// wire without TLS.
#pragma once

#include <cctype>
#include <string>

#include "pocketllm/federation/transport.h"
#include "pocketllm/server/service.h"

namespace pocketllm::sim {

class InProcessTransport : public Transport {
 public:
  explicit InProcessTransport(server::Service& service) : service_(service) {}
  Result<TransportReply> request(const std::string& method, const std::string& target, const std::string& body,
                                 const std::string& bearer) override {
    server::HttpRequest req;
    req.method = method;
    req.target = target;
    req.body = body;
    if (!bearer.empty()) req.authorization = "Bearer " + bearer;
    server::HttpResponse resp = service_.handle(req);
    // Request line, Host, User-Agent, Authorization, Content-Type/Length, blank lines: as the client sends them.
    sent_ += method.size() + target.size() + 11 + 30 + 26 + (bearer.empty() ? 0 : 24 + bearer.size()) +
             (body.empty() ? 0 : 50 + body.size()) + 2;
    received_ += 17 + 26 + 16 + resp.content_type.size() + 18 + std::to_string(resp.body.size()).size() + resp.body.size() + 4;
    for (const auto& [k, v] : resp.headers) received_ += k.size() + v.size() + 4;
    TransportReply out;
    out.status = resp.status;
    out.body = std::move(resp.body);
    for (const auto& [k, v] : resp.headers) {
      std::string name = k;
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.headers[name] = v;
    }
    return out;
  }
  uint64_t bytes_sent() const override { return sent_; }
  uint64_t bytes_received() const override { return received_; }

 private:
  server::Service& service_;
  uint64_t sent_ = 0, received_ = 0;
};

}  // namespace pocketllm::sim
