// The secure-aggregation side of a task's rounds (docs/secagg.md §5): a masked round walks its phases on
// the ticks, and a plain one sums the devices' fixed-point encodings in the clear.
#include <algorithm>

#include "pocketllm/secagg/aggregator_round.h"
#include "pocketllm/secagg/encoding.h"
#include "pocketllm/server/rounds.h"

namespace pocketllm::server {

using Phase = secagg::AggregatorRound::Phase;

secagg::AggregatorRound* TaskRounds::secagg_round(uint64_t round_id) {
  if (round_id == 0 || round_id > rounds_.size()) return nullptr;
  Round& r = rounds_[round_id - 1];
  return r.state == RoundState::kOpen ? r.secagg.get() : nullptr;
}

secagg::RoundConfig TaskRounds::secagg_config(uint64_t round_id) const { return secagg_round_config(policy_, key_, round_id); }

bool TaskRounds::abandon_interrupted_secagg() {
  if (policy_.secagg.mode != SecAggMode::kMasked || rounds_.empty() || rounds_.back().state != RoundState::kOpen) return false;
  Round& r = rounds_.back();
  r.state = RoundState::kAbandoned;
  r.abandon_reason = "the server restarted during the secure round (its phase state lives in memory only)";
  r.secagg.reset();
  return true;
}

Status TaskRounds::resume_fresh_secagg() {
  if (policy_.secagg.mode != SecAggMode::kMasked || rounds_.empty() || rounds_.back().state != RoundState::kOpen) return Status::ok();
  Round& r = rounds_.back();
  auto a = secagg::AggregatorRound::create(secagg_round_config(policy_, key_, r.id), policy_.secagg.max_participants);
  if (!a) return a.status();
  r.secagg = std::move(a.value());
  return Status::ok();
}

Result<std::vector<UpdateEntry>> TaskRounds::tick_secagg(Round& r, int64_t now_ms) {
  std::vector<UpdateEntry> none;
  secagg::AggregatorRound& a = *r.secagg;
  auto abandon = [&](const std::string& why) {
    r.state = RoundState::kAbandoned;
    r.abandon_reason = "secure aggregation: " + why;
    r.secagg.reset();
    return none;
  };
  const bool phase_due = a.pending() == 0 || now_ms >= r.phase_deadline_ms;
  switch (a.phase()) {
    case Phase::kAdvertise: {
      const size_t n = a.received();
      const bool goal = policy_.goal_submissions > 0 && n >= policy_.goal_submissions;
      if (!goal && a.pending() > 0 && now_ms < r.deadline_ms) return none;
      if (n < std::max<size_t>(2, policy_.min_submissions) && r.extensions < policy_.max_extensions) {
        ++r.extensions;
        r.deadline_ms = now_ms + policy_.duration_ms;
        return none;
      }
      if (!a.close_advertise()) return abandon(a.abandon_reason());
      r.phase_deadline_ms = now_ms + policy_.secagg.phase_ms;
      return none;
    }
    case Phase::kShareKeys:
      if (!phase_due) return none;
      if (!a.close_share_keys()) return abandon(a.abandon_reason());
      r.phase_deadline_ms = now_ms + policy_.secagg.phase_ms;
      return none;
    case Phase::kMaskedInput:
      if (!phase_due) return none;
      if (!a.close_masked_input()) return abandon(a.abandon_reason());
      r.phase_deadline_ms = now_ms + policy_.secagg.phase_ms;
      return none;
    case Phase::kUnmask:
      if (!phase_due) return none;
      if (!a.begin_finish()) return abandon(a.abandon_reason());
      if (secagg_runner_) {
        secagg_runner_([agg = r.secagg] { agg->compute(); });  // the shared_ptr keeps it alive
        return none;
      }
      a.compute();
      [[fallthrough]];
    case Phase::kFinishing:
    case Phase::kDone:  // (the background unmasking ends in kDone or kAbandoned)
    case Phase::kAbandoned: {
      if (!a.computed()) return a.phase() == Phase::kAbandoned ? abandon(a.abandon_reason()) : none;
      auto sum = a.take_sum();
      if (!sum) return abandon(a.abandon_reason());
      const secagg::RoundConfig c = secagg_config(r.id);
      const double denominator = policy_.privacy.enabled() ? policy_.privacy.denominator : 0;
      auto coeffs = secagg::decode_mean(c.input, *sum, static_cast<uint32_t>(a.survivors().size()), denominator);
      if (!coeffs) return abandon(coeffs.status().message());
      r.released_count = a.survivors().size();
      return apply(r, coeffs.value());
    }
  }
  return abandon("unknown phase");
}

Result<std::vector<float>> TaskRounds::aggregate_fixed_point(const std::vector<Submission>& subs) const {
  const secagg::RoundConfig c = secagg_config(0);
  std::vector<uint64_t> sum(secagg::input_length(c.input), 0);
  for (const Submission& s : subs) {
    auto x = secagg::encode_input(c.input, s.coeffs, s.examples);
    if (!x) return x.status();
    for (size_t k = 0; k < sum.size(); ++k) sum[k] += (*x)[k];
  }
  return secagg::decode_mean(c.input, sum, static_cast<uint32_t>(subs.size()), 0);
}

}  // namespace pocketllm::server
