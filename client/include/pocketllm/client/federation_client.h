// The device side of the federation protocol (docs/protocol.md): enrolment and the credential file,
// the task and its current round, idempotent submissions with retries and backoff, paged log sync and
// snapshot download. No model code: federated_device.h runs the training. One instance per device;
// not thread-safe.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pocketllm/common/perturbation.h"
#include "pocketllm/common/status.h"
#include "pocketllm/common/update_log.h"
#include "pocketllm/net/http_client.h"

namespace pocketllm {

// How requests reach the server: HTTPS by default; the simulator substitutes an in-process one.
class Transport {
 public:
  virtual ~Transport() = default;
  virtual Result<net::HttpResult> request(const std::string& method, const std::string& target, const std::string& body,
                                          const std::string& bearer) = 0;
  virtual uint64_t bytes_sent() const = 0;
  virtual uint64_t bytes_received() const = 0;
  virtual void disconnect() {}
};

std::unique_ptr<Transport> make_https_transport(std::unique_ptr<net::HttpClient> client);

struct ServerConnection {
  std::string url;            // https://host:port
  std::string ca_file;        // trusted CAs (PEM); empty: the system store
  std::string pinned_sha256;  // or a pinned server certificate
  int timeout_ms = 30000;     // per request (connect, send, receive)
  int retries = 6;            // attempts after the first, for network errors, 5xx and 429
  int backoff_ms = 250;       // first retry delay; doubles each time, capped at 30 s, with jitter
};

struct TaskInfo {
  std::string id, base_model_id, trainable;
  Distribution dist = Distribution::kRademacher;
  double lr = 0, eps = 0;
  int batch_size = 0;
  uint32_t tau = 0;
  uint64_t version = 0, round = 0;
  bool snapshots = false;
  nlohmann::json device;
};

struct RoundInfo {
  std::string task, state;
  uint64_t round = 0, base_version = 0;
  std::vector<uint64_t> seeds;
  double lr = 0, eps = 0;
  int batch_size = 0;
  Distribution dist = Distribution::kRademacher;
  int64_t deadline_ms = 0, server_time_ms = 0;
  uint64_t applied_version = 0;  // applied rounds: the log length after their entries
};

struct SubmitReply {
  int status = 0;          // 201 new, 200 duplicate, or the 4xx the server gave
  bool accepted = false;
  std::string error_code;  // on a 4xx: round_closed, stale_base, …
  std::string message;
  uint64_t current_round = 0;
};

class FederationClient {
 public:
  // Loads the device credential from `credentials_file`; when the file does not exist, enrols with
  // `enrolment_token` and writes it (atomically, mode 0600). The file names the server it belongs to.
  // An empty file name keeps the credential in memory only (simulated devices).
  static Result<std::unique_ptr<FederationClient>> open(std::unique_ptr<Transport> transport, const std::string& server_url,
                                                        const std::string& credentials_file, const std::string& enrolment_token,
                                                        int retries = 6, int backoff_ms = 250);
  static Result<std::unique_ptr<FederationClient>> open(const ServerConnection& server, const std::string& credentials_file,
                                                        const std::string& enrolment_token);

  // A client for a device whose credential the caller already holds (simulated devices).
  static std::unique_ptr<FederationClient> with_credential(std::unique_ptr<Transport> transport, std::string device_id,
                                                           std::string credential, int retries = 6, int backoff_ms = 250) {
    std::unique_ptr<FederationClient> c(new FederationClient(std::move(transport), retries, backoff_ms));
    c->device_id_ = std::move(device_id);
    c->credential_ = std::move(credential);
    return c;
  }
  const std::string& device_id() const { return device_id_; }
  const std::string& credential() const { return credential_; }
  Result<TaskInfo> task(const std::string& id);
  Result<RoundInfo> round(const std::string& task, uint64_t round_id = 0);  // 0: the current round
  // Submits a round's scalars; retried on network errors, 5xx and 429 (the server treats an identical
  // resubmission as a duplicate, so a retry after a lost reply is safe). A 4xx is returned, not retried.
  Result<SubmitReply> submit(const std::string& task, uint64_t round, const std::vector<float>& coeffs, uint64_t examples,
                             uint64_t base_version, double mean_loss);
  // Entries [since, version) of the shared log, paged, in the binary form.
  Result<UpdateLog> log_since(const std::string& task, uint64_t since);
  // The trainable tensors at the latest version (safetensors bytes), checked against the server's SHA-256.
  Result<std::string> snapshot(const std::string& task, uint64_t* version);

  uint64_t bytes_sent() const { return transport_->bytes_sent(); }
  uint64_t bytes_received() const { return transport_->bytes_received(); }
  void disconnect() { transport_->disconnect(); }
  // Sees every request exactly as it is handed to the transport (tests inspect what leaves a device).
  void set_request_observer(std::function<void(const std::string&, const std::string&, const std::string&)> fn) { observer_ = std::move(fn); }

 private:
  FederationClient(std::unique_ptr<Transport> t, int retries, int backoff_ms) : transport_(std::move(t)), retries_(retries), backoff_ms_(backoff_ms) {}
  Result<net::HttpResult> call(const std::string& method, const std::string& target, const std::string& body, bool retry);
  std::unique_ptr<Transport> transport_;
  int retries_, backoff_ms_;
  std::string device_id_, credential_;
  std::function<void(const std::string&, const std::string&, const std::string&)> observer_;
};

}  // namespace pocketllm
