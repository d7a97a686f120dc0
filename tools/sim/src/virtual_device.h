// A simulated device: its data shard, credential, data order and version. The shared trainable weights
// are one copy for all devices (SharedWeights); the round flow is the federation module's.
#pragma once

#include <cstring>
#include <string>
#include <vector>

#include "pocketllm/federation/round_participant.h"

namespace pocketllm::sim {

// The one copy of the shared trainable weights every simulated device starts its rounds from.
class SharedWeights {
 public:
  explicit SharedWeights(std::vector<NamedTensor> tensors) : tensors_(std::move(tensors)) { capture(); }
  void restore() const {  // into the model
    for (size_t i = 0; i < tensors_.size(); ++i) std::memcpy(tensors_[i].data, copy_[i].data(), copy_[i].size() * sizeof(float));
  }
  void capture() {  // from the model
    copy_.clear();
    for (const auto& t : tensors_) copy_.emplace_back(t.data, t.data + t.numel);
  }
  const std::vector<NamedTensor>& tensors() const { return tensors_; }

 private:
  std::vector<NamedTensor> tensors_;
  std::vector<std::vector<float>> copy_;
};

class VirtualDevice : public RoundParticipant {
 public:
  VirtualDevice(LanguageModel& model, Task& task, ThreadPool* pool, const SharedWeights& shared, std::string task_id)
      : RoundParticipant(model, task, pool), shared_(&shared), task_id_(std::move(task_id)) {}
  std::string id, credential;
  std::vector<size_t> shard;
  uint64_t seed = 0;      // data order
  bool byzantine = false; // submits what SimOptions::attack makes of its scalars
  uint64_t version = 0;   // the log version this device has synced to
  uint64_t bytes_up = 0, bytes_down = 0;
  FederationClient* client = nullptr;  // this round's connection

 protected:
  uint64_t shared_version() const override { return version; }
  // The shared model is kept at the latest version for everyone; a device that missed entries still
  // downloads them (its bytes down).
  Status sync() override {
    auto log = client->log_since(task_id_, version);
    if (!log) return log.status();
    version += log->size();
    return Status::ok();
  }
  Status load_shared() override {
    shared_->restore();
    return Status::ok();
  }
  const std::vector<size_t>& examples() const override { return shard; }
  uint64_t data_seed() const override { return seed; }

 private:
  const SharedWeights* shared_;
  std::string task_id_;
};

}  // namespace pocketllm::sim
