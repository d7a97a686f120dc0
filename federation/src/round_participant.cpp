#include "pocketllm/federation/round_participant.h"

#include <cfloat>
#include <cmath>
#include <cstdint>

#include "pocketllm/client/trainer.h"
#include "pocketllm/common/os_random.h"
#ifdef POCKETLLM_HAS_SECAGG
#include "pocketllm/federation/secure_submission.h"
#endif

namespace pocketllm {

Result<LocalRound> run_local_round(LanguageModel& model, Task& task, const std::vector<size_t>& examples, const RoundInfo& round,
                                   uint64_t data_seed, ThreadPool* pool, PairMode pair) {
  if (examples.empty()) return invalid_argument("the device has no examples to train on");
  if (round.seeds.empty() || round.round == 0) return invalid_argument("round without seeds");
  if (round.seed_groups > 1 && !round.group)
    return invalid_argument("round " + std::to_string(round.round) + " lists the seeds of all its " + std::to_string(round.seed_groups) +
                            " seed groups; fetch it with the device's credential to get the device's own");
  // The round's settings come from the server: refused here when they cannot drive a step (a batch past
  // int, lr or eps not a positive finite float32, step indices past int), not trained into garbage.
  const std::string where = "round " + std::to_string(round.round) + " from the server: ";
  if (round.round > static_cast<uint64_t>(INT32_MAX) / round.seeds.size())
    return invalid_argument(where + "round number too large for the device's step index");
  if (round.batch_size > 65536) return invalid_argument(where + "batch_size must be 1..65536, not " + std::to_string(round.batch_size));
  if (!(round.lr <= FLT_MAX) || !(round.eps <= FLT_MAX)) return invalid_argument(where + "lr and eps must be finite float32 numbers");
  TrainOptions o;
  o.batch_size = static_cast<int>(round.batch_size);
  o.lr = static_cast<float>(round.lr);
  o.eps = static_cast<float>(round.eps);
  o.dist = round.dist;
  o.seeds = round.seeds;
  o.first_step = static_cast<int>((round.round - 1) * round.seeds.size());
  o.steps = o.first_step + static_cast<int>(round.seeds.size());
  o.data_seed = data_seed;
  o.pair = pair;
  if (Status ok = check_train_options(o); !ok) return invalid_argument(where + ok.message());
  ZoTrainer trainer(model, task, examples, o, pool);
  LocalRound out;
  double loss_sum = 0;
  int counted = 0;
  for (size_t k = 0; k < round.seeds.size(); ++k) {
    auto rec = trainer.step(o.first_step + static_cast<int>(k));
    if (!rec) return rec.status();
    if (rec->skipped) {
      out.coeffs.push_back(0.0f);
      ++out.skipped;
      continue;
    }
    out.coeffs.push_back(rec->entries[0].coeff);
    loss_sum += 0.5 * (rec->loss_plus[0] + rec->loss_minus[0]);
    ++counted;
    trainer.apply(rec.value());
  }
  out.mean_loss = counted ? loss_sum / counted : NAN;
  out.examples = static_cast<uint64_t>(round.seeds.size()) * static_cast<uint64_t>(round.batch_size);
  return out;
}

void privatize(std::vector<float>* coeffs, const protocol::DevicePrivacy& privacy) {
  double norm2 = 0;
  for (float c : *coeffs) norm2 += static_cast<double>(c) * c;
  const double norm = std::sqrt(norm2);
  // Clipped a hair inside the bound, so float rounding never lands the norm above it on the server.
  const double bound = privacy.clip_norm * (1.0 - 1e-6);
  if (norm > bound) {
    const double scale = bound / norm;
    for (float& c : *coeffs) c = static_cast<float>(c * scale);
  }
  if (privacy.mode == "local") {
    for (float& c : *coeffs) c = static_cast<float>(c + privacy.noise_multiplier * privacy.clip_norm * os_gaussian());
  }
}

const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::kTrained: return "trained";
    case Outcome::kAccepted: return "accepted";
    case Outcome::kDuplicate: return "duplicate";
    case Outcome::kClosed: return "closed";
    case Outcome::kStale: return "stale";
    case Outcome::kRejected: return "rejected";
    case Outcome::kNotSampled: return "not_sampled";
  }
  return "?";
}

std::string Participation::describe() const {
  if (outcome == Outcome::kRejected) return reply.error_name.empty() ? "HTTP " + std::to_string(reply.status) : reply.error_name;
  return outcome_name(outcome);
}

Result<Participation> RoundParticipant::train(const RoundInfo& round) {
  Participation p;
  p.round = round.round;
  if (!round.open()) {
    p.outcome = Outcome::kClosed;
    return p;
  }
  if (round.sampled && !*round.sampled) {  // Poisson sampling of a private task: sit this round out
    p.outcome = Outcome::kNotSampled;
    return p;
  }
  if (shared_version() != round.base_version) {
    POCKETLLM_RETURN_IF_ERROR(sync());
    if (shared_version() != round.base_version) {
      p.outcome = Outcome::kStale;
      return p;
    }
  }
  POCKETLLM_RETURN_IF_ERROR(before_round());  // rounds start from the exact shared weights
  auto local = run_local_round(model_, task_, examples(), round, data_seed(), pool_, pair);
  Status restore = after_round();
  if (!local) return local.status();
  POCKETLLM_RETURN_IF_ERROR(restore);
  p.local = std::move(local.value());
  p.outcome = Outcome::kTrained;
  return p;
}

Result<Participation> RoundParticipant::submit(FederationClient& client, const std::string& task_id, const RoundInfo& round,
                                               Participation p) {
  if (p.outcome != Outcome::kTrained) return p;
  protocol::SubmissionRequest s;
  s.coeffs = p.local.coeffs;
  s.examples = p.local.examples;
  s.base_version = round.base_version;
  if (privacy.on()) {
    privatize(&s.coeffs, privacy);
  } else if (std::isfinite(p.local.mean_loss)) {
    s.loss["mean"] = p.local.mean_loss;
  }
  auto reply = client.submit(task_id, round.round, s);
  if (!reply) return reply.status();
  p.reply = reply.value();
  p.outcome = !reply->accepted ? Outcome::kRejected : reply->duplicate ? Outcome::kDuplicate : Outcome::kAccepted;
  return p;
}

Result<Participation> RoundParticipant::submit_secure(FederationClient& client, const std::string& task_id, const RoundInfo& round,
                                                      Participation p, int poll_ms, int64_t timeout_ms) {
  if (p.outcome != Outcome::kTrained) return p;
#ifdef POCKETLLM_HAS_SECAGG
  auto sub = SecureSubmission::create(round, privacy, p.local);
  if (!sub) return sub.status();
  Status ran = (*sub)->run(client, task_id, poll_ms, timeout_ms);
  if (ran.code() == StatusCode::kCancelled || ran.code() == StatusCode::kIoError) return ran;
  p.outcome = (*sub)->step() == SecureSubmission::Step::kDone ? Outcome::kAccepted : Outcome::kRejected;
  p.reply.accepted = p.outcome == Outcome::kAccepted;
  p.reply.message = (*sub)->failure();
  if (!p.reply.accepted) p.reply.error_name = "secagg_left";
  return p;
#else
  (void)client;
  (void)task_id;
  (void)round;
  (void)poll_ms;
  (void)timeout_ms;
  return unsupported("round " + std::to_string(p.round) + " aggregates securely, and this build has no secure aggregation "
                     "(docs/secagg.md)");
#endif
}

}  // namespace pocketllm
