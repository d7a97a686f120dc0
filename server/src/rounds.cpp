#include "pocketllm/server/rounds.h"

#include <cmath>

#include "pocketllm/common/seeds.h"
#include "pocketllm/secagg/aggregator_round.h"

namespace pocketllm::server {
uint64_t TaskRounds::round_seed(uint64_t key, uint64_t round, uint32_t k) {
  return step_seed(key, round, k);
}

uint64_t TaskRounds::group_seed(uint64_t key, uint64_t round, uint32_t group, uint32_t k) {
  if (group == 0) return round_seed(key, round, k);
  return step_seed(splitmix64(key ^ splitmix64(0x67726f7570ull + group)), round, k);  // "group"
}

std::vector<uint64_t> TaskRounds::group_seeds(const Round& r, uint32_t group) const {
  const uint32_t groups = policy_.seed_groups;
  if (groups <= 1 || group >= groups || r.seeds.size() != size_t{groups} * policy_.tau) return r.seeds;
  const size_t g = group;
  return {r.seeds.begin() + static_cast<long>(g * policy_.tau), r.seeds.begin() + static_cast<long>((g + 1) * policy_.tau)};
}

const Round* TaskRounds::round(uint64_t id) const {
  if (id == 0 || id > rounds_.size()) return nullptr;
  return &rounds_[id - 1];
}

bool TaskRounds::sampled(uint64_t round, const std::string& device) const {
  if (!policy_.privacy.enabled()) return true;
  return is_sampled(sampling_key_, round, device, policy_.privacy.sampling_rate);
}

uint64_t TaskRounds::rounds_applied() const {
  uint64_t n = 0;
  for (const Round& r : rounds_) n += r.state == RoundState::kApplied ? 1 : 0;
  return n;
}

Result<Round> TaskRounds::open_round(int64_t now_ms) {
  if (policy_.tau == 0 || policy_.tau > 256) return invalid_argument("tau must be 1..256");
  if (policy_.seed_groups == 0 || policy_.seed_groups > protocol::kMaxSeedGroups ||
      size_t{policy_.seed_groups} * policy_.tau > protocol::kMaxRoundSeeds)
    return invalid_argument("seed_groups must be 1..256 with seed_groups x tau at most 4096");
  if (!rounds_.empty() && rounds_.back().state == RoundState::kOpen)
    return invalid_argument("round " + std::to_string(rounds_.back().id) + " is still open");
  if (policy_.privacy.enabled()) {
    const PrivacyStatus s = privacy();
    if (s.exhausted)
      return resource_exhausted("the privacy budget is spent: " + std::to_string(s.rounds_applied) + " rounds applied, epsilon " +
                                std::to_string(s.epsilon_spent) + "; one more would reach " + std::to_string(s.epsilon_next) +
                                ", over the target " + std::to_string(policy_.privacy.target_epsilon));
  }
  Round r;
  r.id = rounds_.size() + 1;
  r.base_version = log_.size();
  for (uint32_t g = 0; g < policy_.seed_groups; ++g)
    for (uint32_t k = 0; k < policy_.tau; ++k) r.seeds.push_back(group_seed(key_, r.id, g, k));
  r.opened_ms = now_ms;
  r.deadline_ms = now_ms + policy_.duration_ms;
  if (policy_.secagg.mode == SecAggMode::kMasked) {
    auto a = secagg::AggregatorRound::create(secagg_round_config(policy_, key_, r.id), policy_.secagg.max_participants);
    if (!a) return a.status();
    r.secagg = std::move(a.value());
  }
  rounds_.push_back(r);
  return r;
}

Status TaskRounds::restore(std::vector<Round> rounds, UpdateLog log) {
  for (size_t i = 0; i < rounds.size(); ++i) {
    if (rounds[i].id != i + 1) return corrupt("stored rounds are not numbered 1..n");
    if (rounds[i].base_version > log.size()) return corrupt("stored round " + std::to_string(i + 1) + " starts beyond the log");
    if (rounds[i].state == RoundState::kOpen && i + 1 != rounds.size()) return corrupt("an open round is not the last one");
  }
  rounds_ = std::move(rounds);
  log_ = std::move(log);
  return Status::ok();
}

void TaskRounds::withdraw(uint64_t round_id, const std::string& device) {
  if (round_id == 0 || round_id > rounds_.size()) return;
  rounds_[round_id - 1].submissions.erase(device);
}

void TaskRounds::adopt_submissions(uint64_t round_id, std::vector<Submission> committed) {
  if (round_id == 0 || round_id != rounds_.size() || rounds_.back().state != RoundState::kOpen) return;
  std::map<std::string, Submission> by_device;
  for (Submission& s : committed) {
    std::string device = s.device;
    by_device.emplace(std::move(device), std::move(s));
  }
  rounds_.back().submissions.swap(by_device);
  rounds_.back().released_count = 0;
}

void TaskRounds::release_submissions(uint64_t round_id) {
  if (round_id == 0 || round_id > rounds_.size()) return;
  Round& r = rounds_[round_id - 1];
  if (r.state == RoundState::kOpen || r.submissions.empty()) return;
  r.released_count = r.submissions.size();
  std::map<std::string, Submission>().swap(r.submissions);
}

Result<SubmitOutcome> TaskRounds::submit(uint64_t round_id, Submission s, protocol::ErrorCode* rejection) {
  using protocol::ErrorCode;
  auto reject = [rejection](ErrorCode code, Status status) {
    if (rejection) *rejection = code;
    return status;
  };
  if (round_id == 0 || round_id > rounds_.size()) return reject(ErrorCode::kUnknownRound, not_found("no round " + std::to_string(round_id)));
  Round& r = rounds_[round_id - 1];
  if (r.state != RoundState::kOpen)
    return reject(ErrorCode::kRoundClosed,
                  mismatch("round " + std::to_string(round_id) + " is " + round_state_name(r.state) + "; submissions are closed"));
  if (r.secagg)
    return reject(ErrorCode::kSecAggRequired, invalid_argument("round " + std::to_string(round_id) +
                                                                " aggregates securely: send masked inputs through its secagg phases"));
  if (s.device.empty()) return reject(ErrorCode::kInvalidSubmission, invalid_argument("submission without a device"));
  const size_t tau = r.seeds.size() / std::max<uint32_t>(1, policy_.seed_groups);  // scalars per device
  if (s.coeffs.size() != tau)
    return reject(ErrorCode::kWrongCount, invalid_argument("expected " + std::to_string(tau) + " scalars, got " +
                                                           std::to_string(s.coeffs.size())));
  for (float c : s.coeffs)
    if (!std::isfinite(c)) return reject(ErrorCode::kNonFinite, invalid_argument("a submitted scalar is not finite"));
  if (s.examples == 0) return reject(ErrorCode::kBadExamples, invalid_argument("example count must be at least 1"));
  if (policy_.privacy.enabled()) {
    if (!sampled(round_id, s.device))
      return reject(ErrorCode::kNotSampled, invalid_argument("device " + s.device + " is not sampled for round " + std::to_string(round_id)));
    // The device clips; a vector beyond the bound (rounding aside) is refused, never clipped here:
    // the bound is what the noise is calibrated to. (Local mode: the device's own noise is on top,
    // so the server cannot check the bound.)
    const double norm = l2_norm(s.coeffs);
    if (policy_.privacy.mode == DpMode::kCentral && norm > policy_.privacy.clip_norm * (1.0 + 1e-5))
      return reject(ErrorCode::kInvalidSubmission,
                    invalid_argument("the scalars' L2 norm " + std::to_string(norm) + " exceeds the task's clip norm " +
                                     std::to_string(policy_.privacy.clip_norm) + " (clip on the device before submitting)"));
  }
  if (s.base_version > r.base_version)
    return reject(ErrorCode::kStaleBase, mismatch("base version " + std::to_string(s.base_version) + " is ahead of round " +
                                                  std::to_string(round_id) + "'s base " + std::to_string(r.base_version)));
  const uint64_t behind = r.base_version - s.base_version;
  if (behind > policy_.max_staleness)
    return reject(ErrorCode::kStaleBase,
                  mismatch("scalars computed from version " + std::to_string(s.base_version) + ", " + std::to_string(behind) +
                           " versions behind round " + std::to_string(round_id) + "'s base " + std::to_string(r.base_version) +
                           " (this task accepts at most " + std::to_string(policy_.max_staleness) + "); sync the log and retry"));
  s.weight = 1.0 / (1.0 + static_cast<double>(behind) / static_cast<double>(tau));
  auto it = r.submissions.find(s.device);
  if (it != r.submissions.end()) {
    const bool same = it->second.coeffs == s.coeffs && it->second.examples == s.examples &&
                      it->second.base_version == s.base_version;
    if (same) return SubmitOutcome::kDuplicate;
    return reject(ErrorCode::kConflictingResubmission,
                  mismatch("device " + s.device + " already submitted different scalars for round " + std::to_string(round_id)));
  }
  r.submissions.emplace(s.device, std::move(s));
  return SubmitOutcome::kAccepted;
}

Status TaskRounds::close_now(uint64_t round_id, int64_t now_ms) {
  if (round_id == 0 || round_id > rounds_.size()) return not_found("no round " + std::to_string(round_id));
  Round& r = rounds_[round_id - 1];
  if (r.state != RoundState::kOpen) return mismatch("round " + std::to_string(round_id) + " is " + round_state_name(r.state));
  r.deadline_ms = std::min(r.deadline_ms, now_ms);
  r.phase_deadline_ms = std::min(r.phase_deadline_ms, now_ms);  // a masked round: its current phase
  r.extensions = std::max(r.extensions, policy_.max_extensions);  // closing now: no extension, apply or abandon
  return Status::ok();
}

Result<std::vector<UpdateEntry>> TaskRounds::tick(int64_t now_ms) {
  std::vector<UpdateEntry> applied;
  if (rounds_.empty() || rounds_.back().state != RoundState::kOpen) return applied;
  Round& r = rounds_.back();
  if (r.secagg) return tick_secagg(r, now_ms);
  const size_t n = r.submissions.size();
  const bool goal = policy_.goal_submissions > 0 && n >= policy_.goal_submissions;
  if (!goal && now_ms < r.deadline_ms) return applied;
  if (n < std::max<size_t>(1, policy_.min_submissions)) {
    if (r.extensions < policy_.max_extensions) {
      ++r.extensions;
      r.deadline_ms = now_ms + policy_.duration_ms;
    } else {
      r.state = RoundState::kAbandoned;
    }
    return applied;
  }
  std::vector<Submission> subs;
  for (const auto& [device, s] : r.submissions) subs.push_back(s);
  AggregationOptions opt = policy_.aggregation;
  opt.min_submissions = policy_.min_submissions;
  if (policy_.seed_groups > 1) {  // the task spec keeps these plain: no privacy, no secure aggregation
    auto entries = aggregate_seed_groups(r, subs, opt);
    if (!entries) return entries.status();
    return apply_entries(r, entries.value());
  }
  auto coeffs = policy_.secagg.mode == SecAggMode::kPlain ? aggregate_fixed_point(subs)
                : policy_.privacy.enabled()                 ? aggregate_private(subs, r.seeds.size(), policy_.privacy, gaussian_)
                                                            : aggregate(subs, r.seeds.size(), opt);
  if (!coeffs) return coeffs.status();
  return apply(r, coeffs.value());
}

Result<std::vector<UpdateEntry>> TaskRounds::aggregate_seed_groups(const Round& r, const std::vector<Submission>& subs,
                                                                   const AggregationOptions& opt) const {
  const uint32_t groups = policy_.seed_groups;
  const size_t tau = policy_.tau;
  if (r.seeds.size() != size_t{groups} * tau) return corrupt("round " + std::to_string(r.id) + " does not hold a seed per group and step");
  std::vector<uint32_t> group_of;
  for (const Submission& s : subs) group_of.push_back(protocol::seed_group(s.device, r.id, groups));
  auto per_group = aggregate_groups(subs, group_of, groups, tau, opt);
  if (!per_group) return per_group.status();
  std::vector<UpdateEntry> entries;
  for (uint32_t g = 0; g < groups; ++g)
    for (size_t k = 0; k < per_group.value()[g].size(); ++k) entries.push_back({r.seeds[g * tau + k], per_group.value()[g][k]});
  return entries;
}

Result<std::vector<UpdateEntry>> TaskRounds::apply(Round& r, const std::vector<float>& coeffs) {
  if (coeffs.size() != r.seeds.size()) return corrupt("round " + std::to_string(r.id) + ": a coefficient per seed expected");
  std::vector<UpdateEntry> entries;
  for (size_t k = 0; k < r.seeds.size(); ++k) entries.push_back({r.seeds[k], coeffs[k]});
  return apply_entries(r, entries);
}

Result<std::vector<UpdateEntry>> TaskRounds::apply_entries(Round& r, const std::vector<UpdateEntry>& entries) {
  std::vector<UpdateEntry> applied;
  // A private round's coefficients are bounded by the clipping; abandoning on their size would make
  // the decision depend on the devices' data (and so leak), so only the non-private path checks it.
  for (const UpdateEntry& e : entries) {
    if (policy_.privacy.enabled()) break;
    if (std::isfinite(e.coeff) && std::fabs(e.coeff) <= policy_.max_coeff) continue;
    r.state = RoundState::kAbandoned;  // never applied: the log stays as it was
    r.abandon_reason = "aggregate coefficient " + std::to_string(e.coeff) + " beyond max_coeff " + std::to_string(policy_.max_coeff);
    return applied;
  }
  for (const UpdateEntry& e : entries) {
    POCKETLLM_RETURN_IF_ERROR(log_.append(e));
    applied.push_back(e);
  }
  r.state = RoundState::kApplied;
  r.secagg.reset();
  return applied;
}

}  // namespace pocketllm::server
