// The round flow every device follows (docs/protocol.md section 5), written once: a round is taken
// only when it is open and the device is at (or syncs to) its base version; the tau local steps start
// from the exact shared weights, run along the server's seeds, and the shared weights are restored
// after; only the tau scalars (+ example count and mean loss) are uploaded. Where the shared weights
// live is the subclass's business: a state directory (FederatedDevice) or one copy held for many
// simulated devices (the simulator).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pocketllm/client/model.h"
#include "pocketllm/client/paired_forward.h"
#include "pocketllm/client/task.h"
#include "pocketllm/federation/federation_client.h"

namespace pocketllm {

struct LocalRound {
  std::vector<float> coeffs;  // c_k = lr * g_k, one per seed (0 for a skipped, non-finite step)
  double mean_loss = 0;       // mean of (L+ + L-)/2 over the steps
  int skipped = 0;
  uint64_t examples = 0;      // examples seen: tau * batch size
};

// The tau local steps from the model's current weights, which end at the locally updated point.
// Step k of round r uses batch (r-1)*tau + k of the device's data order.
// pair: how a step's two forward passes run (TrainOptions::pair).
Result<LocalRound> run_local_round(LanguageModel& model, Task& task, const std::vector<size_t>& examples, const RoundInfo& round,
                                   uint64_t data_seed, ThreadPool* pool, PairMode pair = PairMode::kAuto);

enum class Outcome {
  kTrained,    // trained, not submitted yet
  kAccepted,   // the server took it (201)
  kDuplicate,  // the server had it already (200)
  kClosed,     // the round is not open: nothing done
  kStale,      // the device could not reach the round's base version: nothing done
  kRejected,   // the server refused the submission: see Participation::error
  kNotSampled, // a private task's round did not sample this device: nothing done
};
const char* outcome_name(Outcome o);

// A private task's device side: the tau-vector clipped to L2 norm clip_norm; in local mode each scalar
// then gets N(0, (noise_multiplier * clip_norm)^2) from the OS's randomness.
void privatize(std::vector<float>* coeffs, const protocol::DevicePrivacy& privacy);

struct Participation {
  Outcome outcome = Outcome::kClosed;
  uint64_t round = 0;
  LocalRound local;
  SubmitReply reply;  // after submit()
  bool submitted() const { return outcome == Outcome::kAccepted || outcome == Outcome::kDuplicate; }
  // "accepted", "duplicate", "closed", "stale", or the server's error code.
  std::string describe() const;
};

class RoundParticipant {
 public:
  virtual ~RoundParticipant() = default;
  // Step 1: the local steps of an open round (kTrained), or kClosed / kStale with nothing trained.
  Result<Participation> train(const RoundInfo& round);
  // Step 2: uploads what train() produced (a kTrained participation) through `client`. A private task
  // (`privacy`) gets the tau-vector clipped to its L2 bound, noised on the device in local mode, and no
  // loss statistics (they are not covered by the accounting).
  Result<Participation> submit(FederationClient& client, const std::string& task_id, const RoundInfo& round, Participation p);
  // Step 2 of a masked secure-aggregation round (RoundInfo::secagg, docs/secagg.md): the device takes
  // the round's phases as they come, polling every poll_ms, until it has revealed its shares (kAccepted),
  // the round went on without it or refused it (kRejected, reply.message says why), or timeout_ms passed.
  // A build without the secagg library refuses with kUnsupported.
  Result<Participation> submit_secure(FederationClient& client, const std::string& task_id, const RoundInfo& round, Participation p,
                                      int poll_ms = 500, int64_t timeout_ms = 3'600'000);

  // The task's differential-privacy settings (docs/privacy.md); off unless the task says otherwise.
  protocol::DevicePrivacy privacy;
  // How a step's two forward passes run (TrainOptions::pair): the same scalars either way; at once holds
  // a second pass's activations. A device with a memory budget decides by it (DeviceSession).
  PairMode pair = PairMode::kAuto;

 protected:
  RoundParticipant(LanguageModel& model, Task& task, ThreadPool* pool) : model_(model), task_(task), pool_(pool) {}
  virtual uint64_t shared_version() const = 0;
  virtual Status sync() = 0;                   // the shared weights to the server's latest version
  virtual Status load_shared() = 0;            // the exact shared weights into the model
  virtual Status before_round() { return load_shared(); }  // the model at the exact shared weights
  virtual Status after_round() { return load_shared(); }   // back to what the device uses between rounds
  virtual const std::vector<size_t>& examples() const = 0;
  virtual uint64_t data_seed() const = 0;

  LanguageModel& model_;
  Task& task_;
  ThreadPool* pool_;
};

}  // namespace pocketllm
