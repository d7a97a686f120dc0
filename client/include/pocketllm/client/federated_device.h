// A device in a federation: runs a round's tau local zeroth-order steps along the server's seeds on its
// own examples, submits only the tau scalars (+ example count and mean loss), restores the shared
// weights, and keeps them in sync with the server's log (replay, or a snapshot when far behind). Its own
// personal adaptation is a separate seed log re-applied on top of every newer shared base.
//
// State directory (the app chooses it): state.json (task, base model id, version), shared.safetensors
// (the trainable tensors at that version: the exact shared weights, restored after every round) and
// personal.log (binary update log). Weights in memory = shared + personal. Memory beyond inference:
// none; the restore reads shared.safetensors back.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "pocketllm/client/federation_client.h"
#include "pocketllm/client/model.h"
#include "pocketllm/client/task.h"
#include "pocketllm/client/trainer.h"

namespace pocketllm {

struct LocalRound {
  std::vector<float> coeffs;  // c_k = lr * g_k, one per seed (0 for a skipped, non-finite step)
  double mean_loss = 0;       // mean of (L+ + L-)/2 over the steps
  int skipped = 0;
  uint64_t examples = 0;      // examples seen: tau * batch size
};

// The tau local steps of docs/protocol.md section 5 from the model's current weights, which end at the
// locally updated point. Step k of round r uses batch (r-1)*tau + k of the device's data order.
Result<LocalRound> run_local_round(LanguageModel& model, Task& task, const std::vector<size_t>& examples, const RoundInfo& round,
                                   uint64_t data_seed, ThreadPool* pool);

struct FederatedDeviceOptions {
  std::string task_id;
  std::string state_dir;
  uint64_t data_seed = 0;         // this device's batch order
  uint64_t snapshot_after = 4096; // entries behind beyond which a snapshot is downloaded (when the task has them)
};

struct Participation {
  bool submitted = false;
  std::string outcome;  // "accepted", "duplicate", "closed", "stale", or the server's error code
  uint64_t round = 0;
  LocalRound local;
};

class FederatedDevice {
 public:
  // The model's trainable tensors must already be selected (the task's `trainable`) and at the base
  // weights or at the state directory's version (restored from shared.safetensors when present).
  static Result<std::unique_ptr<FederatedDevice>> open(LanguageModel& model, const std::string& model_id, Task& task,
                                                       std::vector<size_t> examples, FederationClient& client,
                                                       FederatedDeviceOptions options, ThreadPool* pool);

  uint64_t version() const { return version_; }
  const TaskInfo& task_info() const { return info_; }
  // Brings the shared weights to the server's latest version; personal entries are re-applied after.
  Status sync();
  // Takes part in `round` when it is open and starts from this device's version (syncing first).
  Result<Participation> participate(const RoundInfo& round);
  // Local personalisation: `steps` ZO steps with the device's own seeds on top of the current weights,
  // appended to personal.log and kept across syncs. Never uploaded.
  Status personalize(const TrainOptions& options, int steps);
  const UpdateLog& personal_log() const { return personal_; }

 private:
  FederatedDevice(LanguageModel& m, Task& t, FederationClient& c, ThreadPool* p) : model_(m), task_(t), client_(c), pool_(p) {}
  Status load_shared();
  Status save_state();  // shared.safetensors (the weights must be exactly shared) + state.json
  Status save_meta();   // state.json only
  void apply_personal();
  LanguageModel& model_;
  Task& task_;
  FederationClient& client_;
  ThreadPool* pool_;
  FederatedDeviceOptions o_;
  std::vector<size_t> examples_;
  TaskInfo info_;
  std::string model_id_;
  uint64_t version_ = 0;
  UpdateLog personal_;
  uint64_t personal_steps_ = 0;
};

}  // namespace pocketllm
