// The round logic of one federated task, independent of HTTP and storage (docs/protocol.md section 5):
// a round publishes tau server-issued seeds; devices submit tau scalars (+ example count); at the deadline
// or when the goal count is reached the round closes, and with enough submissions it is aggregated into
// tau update entries appended to the task's log (the version advances by tau). Time is passed in, so
// the logic is deterministic and testable; the service persists what it returns.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pocketllm/common/update_log.h"
#include "pocketllm/protocol/error_code.h"
#include "pocketllm/protocol/messages.h"
#include "pocketllm/server/aggregation.h"
#include "pocketllm/server/privacy_policy.h"
#include "pocketllm/server/secagg_policy.h"

namespace pocketllm::secagg {
class AggregatorRound;
}

namespace pocketllm::server {

struct RoundPolicy {
  uint32_t tau = 8;                 // local steps (seeds) per round
  // Seed groups (docs/protocol.md §5): devices fall into this many groups per round (by a public hash
  // of their id), each group gets its own tau seeds, and each non-empty group's aggregate is appended —
  // n devices explore up to n directions instead of sharpening tau. 1: every device gets the same seeds.
  uint32_t seed_groups = 1;
  int64_t duration_ms = 60'000;     // deadline after opening
  size_t goal_submissions = 0;      // close early at this many (0: only at the deadline)
  size_t min_submissions = 3;       // fewer at the deadline: extend or abandon, never apply silently
                                    // (3: one attacker cannot make a round alone, nor own its median
                                    // with a single honest device)
  uint32_t max_extensions = 1;      // extensions before abandoning
  // A device whose scalars were computed from an older base (it skipped a sync) is accepted when at
  // most this many versions behind the round's base, down-weighted by 1 / (1 + versions_behind / tau).
  // 0: only submissions from the round's own base are accepted.
  uint64_t max_staleness = 0;
  // A round whose aggregate has a coefficient beyond this bound (or non-finite) is abandoned and
  // reported, never applied: with |C| <= max_coeff every weight stays finite (|θ| grows by at most
  // max_coeff per entry).
  float max_coeff = 100.0f;
  AggregationOptions aggregation;
  // Differential privacy (off unless the task asks): L2-clipped submissions, sampled devices, noisy
  // sums over a fixed denominator, and a budget no round may exceed (privacy_policy.h).
  PrivacyPolicy privacy;
  // Secure aggregation (off unless the task asks): devices send masked fixed-point inputs through the
  // phases of docs/secagg.md and the server learns only their sum (secagg_policy.h).
  SecAggPolicy secagg;
};

using protocol::RoundState;
using protocol::round_state_name;

struct Round {
  uint64_t id = 0;
  uint64_t base_version = 0;  // log length the devices start from
  std::vector<uint64_t> seeds;  // seed_groups × tau: group g's at [g·tau, g·tau + tau)
  int64_t opened_ms = 0, deadline_ms = 0;
  uint32_t extensions = 0;
  RoundState state = RoundState::kOpen;
  std::map<std::string, Submission> submissions;  // by device; released (kept in the store only) once closed
  size_t released_count = 0;                      // how many there were when they were released
  size_t submission_count() const { return submissions.empty() ? released_count : submissions.size(); }
  std::string abandon_reason;  // why an abandoned round was not applied (in memory; logged)
  // A masked secure-aggregation round: its state machine (memory only — a restarted server abandons
  // the round) and the deadline of its current phase after key advertisement.
  std::shared_ptr<secagg::AggregatorRound> secagg;
  int64_t phase_deadline_ms = 0;
};

// What a submit() call did, so the service can answer (201 accepted, 200 same resubmission).
enum class SubmitOutcome { kAccepted, kDuplicate };

class TaskRounds {
 public:
  TaskRounds(uint64_t seed_key, RoundPolicy policy, uint64_t sampling_key = 0)
      : key_(seed_key), sampling_key_(sampling_key), policy_(policy),
        accountant_(policy.privacy.enabled() ? policy.privacy.sampling_rate : 0.0, policy.privacy.noise_multiplier,
                    policy.privacy.enabled() ? privacy::default_orders() : std::vector<double>{2.0}) {}

  // The source of the private rounds' noise (standard normal draws); the OS's randomness by default.
  void set_noise_source(std::function<double()> gaussian) { gaussian_ = std::move(gaussian); }
  // Private tasks: whether `device` is sampled for round `round` (always true without sampling).
  bool sampled(uint64_t round, const std::string& device) const;
  // Rounds applied so far (what the privacy budget is spent on) and the budget's state.
  uint64_t rounds_applied() const;
  PrivacyStatus privacy() const { return privacy_status(policy_.privacy, accountant_, rounds_applied()); }

  // Rebuilds the state a store persisted: the rounds in id order (each with its submissions) and the log.
  Status restore(std::vector<Round> rounds, UpdateLog log);
  // Undoes an accepted submission (the service could not persist it).
  void withdraw(uint64_t round_id, const std::string& device);
  // Replaces the open round's submissions with those the store committed (replicas: the round's
  // submissions arrived through every server). No-op unless `round_id` is the open round.
  void adopt_submissions(uint64_t round_id, std::vector<Submission> committed);
  // Drops a closed round's submissions from memory (they stay in the store), keeping their count:
  // memory holds the open round's submissions only.
  void release_submissions(uint64_t round_id);
  const RoundPolicy& policy() const { return policy_; }
  const std::vector<Round>& rounds() const { return rounds_; }

  // Opens the next round (the previous one must be closed). A private task whose budget one more
  // applied round would exceed opens none: kResourceExhausted.
  Result<Round> open_round(int64_t now_ms);
  const Round* current() const { return rounds_.empty() ? nullptr : &rounds_.back(); }
  const Round* round(uint64_t id) const;

  // A device's scalars for a round. Errors: unknown round (kNotFound), a closed round (kMismatch: the
  // service answers 409), a wrong scalar count or a non-finite scalar (kInvalidArgument), a different
  // resubmission from the same device (kMismatch), a base version ahead of the round's or further behind
  // than the policy's max_staleness (kMismatch). The same resubmission is a no-op (kDuplicate).
  // An accepted stale submission gets its down-weighting in Submission::weight. On an error,
  // `rejection` (when given) receives the protocol's code for it: the service never parses messages.
  Result<SubmitOutcome> submit(uint64_t round_id, Submission s, protocol::ErrorCode* rejection = nullptr);

  // Closes the open round when due: at the goal count, or at the deadline (extended when short of the
  // minimum, abandoned after the allowed extensions). Returns the entries appended when it applied.
  Result<std::vector<UpdateEntry>> tick(int64_t now_ms);

  // Moves the open round's deadline to now (the next tick closes it: applied, extended or abandoned).
  Status close_now(uint64_t round_id, int64_t now_ms);

  const UpdateLog& log() const { return log_; }
  uint64_t version() const { return log_.size(); }

  // The seed of round r, step k: SplitMix64 over the task key (docs/training.md's step_seed form).
  static uint64_t round_seed(uint64_t key, uint64_t round, uint32_t k);
  // Seed groups: group g's seed k (group 0's are round_seed's; group g > 0 keys step_seed with
  // splitmix64(key XOR splitmix64(0x67726f7570 + g))).
  static uint64_t group_seed(uint64_t key, uint64_t round, uint32_t group, uint32_t k);
  // The tau seeds of group `group` in round `r` (all of them when the task has no groups).
  std::vector<uint64_t> group_seeds(const Round& r, uint32_t group) const;

  // Secure aggregation (masked mode, docs/secagg.md): the open round's state machine for the service's
  // phase endpoints (null when the round is closed or not masked), and a round's parameters.
  secagg::AggregatorRound* secagg_round(uint64_t round_id);
  secagg::RoundConfig secagg_config(uint64_t round_id) const;
  // After a restart: an open masked round lost its phase state with the process; it is abandoned (never
  // resumed half-way, never applied). Returns whether there was one.
  bool abandon_interrupted_secagg();
  // A task just created: its open first round (from the store) gets its state machine.
  Status resume_fresh_secagg();
  // Where a masked round's unmasking (the costly part: X25519 and Shamir over every dropped and surviving
  // device) runs: by default right inside tick(); a server gives a runner that starts it off its lock,
  // and a later tick() applies the result.
  void set_secagg_runner(std::function<void(std::function<void()>)> runner) { secagg_runner_ = std::move(runner); }

 private:
  // The masked round's phases: closes the current one when due (everyone pending answered, or its
  // deadline), and at the end applies the decoded sum or abandons the round.
  Result<std::vector<UpdateEntry>> tick_secagg(Round& r, int64_t now_ms);
  // Plain mode: the devices' scalars encoded as they would have encoded them, summed in the clear.
  Result<std::vector<float>> aggregate_fixed_point(const std::vector<Submission>& subs) const;
  // Appends the round's coefficients to the log (after the max_coeff check of non-private rounds).
  Result<std::vector<UpdateEntry>> apply(Round& r, const std::vector<float>& coeffs);
  Result<std::vector<UpdateEntry>> apply_entries(Round& r, const std::vector<UpdateEntry>& entries);
  // Seed groups: the weighted mean of each group's devices on its own seeds, non-empty groups in order.
  Result<std::vector<UpdateEntry>> aggregate_seed_groups(const Round& r, const std::vector<Submission>& subs,
                                                         const AggregationOptions& opt) const;

  uint64_t key_;
  uint64_t sampling_key_;
  RoundPolicy policy_;
  privacy::RoundAccountant accountant_;  // the task's per-round RDP, computed once (status requests are frequent)
  std::function<double()> gaussian_ = system_gaussian;
  std::function<void(std::function<void()>)> secagg_runner_;
  std::vector<Round> rounds_;
  UpdateLog log_;
};

}  // namespace pocketllm::server
