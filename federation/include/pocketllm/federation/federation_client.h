// The device side of the federation protocol (docs/protocol.md) over a Transport: enrolment and the
// credential file, the task and its rounds, idempotent submissions with retries and backoff, paged log
// sync and snapshot download. Requests and replies are the protocol module's types. No model code:
// federated_device.h runs the training. One instance per device; not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pocketllm/common/status.h"
#include "pocketllm/common/update_log.h"
#include "pocketllm/federation/transport.h"
#include "pocketllm/protocol/messages.h"

namespace pocketllm {

using protocol::RoundInfo;
using protocol::TaskInfo;

// A retry about to wait (RetryPolicy::on_retry): the request, which retry of how many, the wait before
// it and why the attempt before failed.
struct RetryNotice {
  std::string request;  // "POST /v1/enrol"
  int retry = 0;        // 1 .. retries
  int retries = 0;
  int wait_ms = 0;
  std::string why;
};

struct RetryPolicy {
  int retries = 6;        // attempts after the first, for network errors, 5xx and 429
  int backoff_ms = 250;   // first retry delay; doubles each time, capped at 30 s, with jitter
  std::function<void(const RetryNotice&)> on_retry;  // told before each retry's wait (a CLI prints it, the SDK logs it)
};

struct SubmitReply {
  int status = 0;          // 201 new, 200 duplicate, or the 4xx the server gave
  bool accepted = false;
  bool duplicate = false;
  protocol::ErrorCode error = protocol::ErrorCode::kUnknown;  // on a 4xx
  std::string error_name;  // the code as the server sent it
  std::string message;
  uint64_t current_round = 0;
};

// A secure-aggregation exchange: the reply's body on 2xx, the error otherwise.
struct SecAggReply : SubmitReply {
  std::string body;
};

class FederationClient {
 public:
  // Loads the device credential from `credentials_file`; when the file does not exist, enrols with
  // `enrolment_token` and writes it (atomically, mode 0600). The file names the server it belongs to.
  // An empty file name keeps the credential in memory only (simulated devices).
  static Result<std::unique_ptr<FederationClient>> open(std::unique_ptr<Transport> transport, const std::string& server_url,
                                                        const std::string& credentials_file, const std::string& enrolment_token,
                                                        RetryPolicy retry = {});

  // A client for a device whose credential the caller already holds (simulated devices).
  static std::unique_ptr<FederationClient> with_credential(std::unique_ptr<Transport> transport, std::string device_id,
                                                           std::string credential, RetryPolicy retry = {});
  const std::string& device_id() const { return device_id_; }
  const std::string& credential() const { return credential_; }
  Result<TaskInfo> task(const std::string& id);
  Result<RoundInfo> round(const std::string& task, uint64_t round_id = 0);  // 0: the current round
  // Submits a round's scalars; retried on network errors, 5xx and 429 (the server treats an identical
  // resubmission as a duplicate, so a retry after a lost reply is safe). A 4xx is returned, not retried.
  Result<SubmitReply> submit(const std::string& task, uint64_t round, const protocol::SubmissionRequest& submission);
  // One secure-aggregation exchange of a masked round (docs/secagg.md §5): method POST with a phase
  // message (step keys, shares, masked, unmask) or GET (roster, inbox, survivors). Retried like submit();
  // a POST the server already holds (409 secagg_repeat after a lost reply) counts as accepted.
  Result<SecAggReply> secagg(const std::string& method, const std::string& task, uint64_t round, const std::string& step,
                             const std::string& body = "");
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
  FederationClient(std::unique_ptr<Transport> t, RetryPolicy retry) : transport_(std::move(t)), retry_(retry) {}
  Status enrol(const std::string& token);
  Result<TransportReply> call(const std::string& method, const std::string& target, const std::string& body, bool retry);
  std::unique_ptr<Transport> transport_;
  RetryPolicy retry_;
  std::string device_id_, credential_;
  std::function<void(const std::string&, const std::string&, const std::string&)> observer_;
};

}  // namespace pocketllm
