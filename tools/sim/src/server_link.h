// The simulator's side of the server: an in-process Service or a real server over HTTPS, transports for
// devices, the admin channel, and a reader for the task and its log.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>

#include "pocketllm/federation/federation_client.h"
#include "pocketllm/server/service.h"
#include "pocketllm/sim/simulation.h"

namespace pocketllm::sim {

class ServerLink {
 public:
  static Result<std::unique_ptr<ServerLink>> open(const SimOptions& o);
  // A new connection (one per device and round, as real devices make).
  Result<std::unique_ptr<Transport>> transport();
  // An admin request; a non-2xx answer is an error carrying the body.
  Result<nlohmann::json> admin(const std::string& method, const std::string& target, const std::string& body);
  // Reads the task and its log with the admin credential.
  FederationClient& reader() { return *reader_; }
  const std::string& url() const { return url_; }

 private:
  ServerLink() = default;
  std::unique_ptr<server::Service> service_;
  std::string url_, ca_file_, admin_token_;
  std::unique_ptr<Transport> admin_;
  std::unique_ptr<FederationClient> reader_;
};

}  // namespace pocketllm::sim
