// A device in a federation with its state on disk: takes part in rounds (round_participant.h), keeps
// its shared weights in sync with the server's log (replay, or a snapshot when far behind), and keeps
// its own personal adaptation as a separate seed log re-applied on top of every newer shared base.
//
// State directory (the app chooses it): state.json (task, base model id, version), shared.safetensors
// (the trainable tensors at that version: the exact shared weights, restored after every round) and
// personal.log (binary update log). Weights in memory = shared + personal. Memory beyond inference:
// none; the restore reads shared.safetensors back.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "pocketllm/client/trainer.h"
#include "pocketllm/federation/round_participant.h"

namespace pocketllm {

struct FederatedDeviceOptions {
  std::string task_id;
  std::string state_dir;
  uint64_t data_seed = 0;         // this device's batch order (device_model.h: device_data_seed)
  uint64_t snapshot_after = 4096; // entries behind beyond which a snapshot is downloaded (when the task has them)
};

class FederatedDevice : public RoundParticipant {
 public:
  // The model's trainable tensors must already be selected (the task's `trainable`) and at the base
  // weights or at the state directory's version (restored from shared.safetensors when present).
  static Result<std::unique_ptr<FederatedDevice>> open(LanguageModel& model, const std::string& model_id, Task& task,
                                                       std::vector<size_t> examples, FederationClient& client,
                                                       FederatedDeviceOptions options, ThreadPool* pool,
                                                       const TaskInfo* task_info = nullptr);  // fetched when null

  uint64_t version() const { return version_; }
  const TaskInfo& task_info() const { return info_; }
  // Brings the shared weights to the server's latest version; personal entries are re-applied after.
  Status sync() override;
  // Takes part in `round` when it is open and starts from this device's version (syncing first).
  Result<Participation> participate(const RoundInfo& round);
  // Local personalisation: `steps` ZO steps with the device's own seeds on top of the current weights,
  // appended to personal.log and kept across syncs. Never uploaded.
  Status personalize(const TrainOptions& options, int steps);
  const UpdateLog& personal_log() const { return personal_; }

 protected:
  uint64_t shared_version() const override { return version_; }
  Status load_shared() override;
  Status before_round() override;
  Status after_round() override;
  const std::vector<size_t>& examples() const override { return examples_; }
  uint64_t data_seed() const override { return o_.data_seed; }

 private:
  FederatedDevice(LanguageModel& m, Task& t, FederationClient& c, ThreadPool* p) : RoundParticipant(m, t, p), client_(c) {}
  Status restore_state(const std::string& model_id);
  Result<bool> try_snapshot(uint64_t target);
  Status save_state();  // shared.safetensors (the weights must be exactly shared) + state.json
  Status save_meta();   // state.json only
  void apply_personal();
  FederationClient& client_;
  FederatedDeviceOptions o_;
  std::vector<size_t> examples_;
  TaskInfo info_;
  std::string model_id_;
  uint64_t version_ = 0;
  UpdateLog personal_;
  uint64_t personal_steps_ = 0;
};

}  // namespace pocketllm
