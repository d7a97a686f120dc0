// One device of a federation, assembled the same way for every front end (the CLI's `federate`, the
// SDK's pllm_device_*): credential (loaded or enrolled), the task, the base model checked against the
// task and its trainable tensors selected, an optional memory budget, the device's examples, its data
// order (device_model.h), its state directory, and the round flow. Not thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pocketllm/common/thread_pool.h"
#include "pocketllm/federation/device_model.h"
#include "pocketllm/federation/federated_device.h"

namespace pocketllm {

struct DeviceConfig {
  std::unique_ptr<Transport> transport;  // how requests reach the server (required)
  std::string server_url;                // the server the credential file belongs to
  std::string credentials_file;          // loaded, or written after enrolment (mode 0600)
  std::string enrolment_token;           // used when there is no credential yet
  RetryPolicy retry;
  std::string task_id;
  // The base model: one already in memory (the SDK's pllm_model; taken over by the session, given back
  // by release_model() — and left with the caller when open fails), or loaded from model_path.
  LoadedModel* model = nullptr;
  std::string model_id;                  // of `model`, when the caller knows it
  std::string model_path;
  std::string data_path;
  std::string state_dir;                 // created (mode 0700) when missing
  int threads = 0;                       // 0: all cores
  uint64_t memory_budget_bytes = 0;      // 0: no check
  // Simulated shards (`federate --shard I/N`): this device trains on the examples the function picks
  // and orders them by (partition_seed, shard). Unset: all examples, ordered by the device id.
  std::function<Result<std::vector<size_t>>(const Task&)> select_examples;
  std::optional<uint64_t> partition_seed;
  int shard = 0;
};

class DeviceSession {
 public:
  static Result<std::unique_ptr<DeviceSession>> open(DeviceConfig config);

  FederatedDevice& device() { return *device_; }
  FederationClient& client() { return *client_; }
  DeviceModel& model() { return model_; }
  ThreadPool* pool() { return pool_.get(); }
  const std::string& task_id() const { return task_id_; }
  size_t examples() const { return examples_; }

  // The server's current round.
  Result<RoundInfo> current_round() { return client_->round(task_id_); }
  // Whether `round` is open and newer than the last one this session submitted to.
  bool is_new(const RoundInfo& round) const { return round.open() && round.round > last_round_; }
  // Takes part in `round`; a submitted round is not offered again by poll_new_round.
  Result<Participation> take_part(const RoundInfo& round);
  // Polls until `round` is no longer open; returns it as closed (applied or abandoned).
  Result<RoundInfo> wait_until_closed(uint64_t round, int poll_ms = 100);
  // Loss (and accuracy) of the device's current weights on a data file.
  Result<EvalResult> evaluate(const std::string& data_path);
  // Ends the session and hands its model (with the device's weights) back.
  LoadedModel release_model();

 private:
  DeviceSession() = default;
  Status init(DeviceConfig& c);
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<FederationClient> client_;
  DeviceModel model_;
  std::unique_ptr<Task> task_;
  std::unique_ptr<FederatedDevice> device_;
  std::string task_id_;
  size_t examples_ = 0;
  uint64_t last_round_ = 0;
};

}  // namespace pocketllm
