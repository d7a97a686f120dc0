// The secure-aggregation endpoints (docs/protocol.md §9, docs/secagg.md §5): a masked round's phase
// messages. Each POST carries one device's message for the current phase; each GET gives a device what it
// needs to start its next step. The state machine (secagg::AggregatorRound) checks everything; a refused
// message changes nothing. Phases advance on the ticks (tick_secagg in rounds_secagg.cpp).
#include "http_util.h"
#include "pocketllm/secagg/aggregator_round.h"
#include "pocketllm/secagg/wire.h"
#include "service_internal.h"

namespace pocketllm::server {

using nlohmann::json;
using protocol::ErrorCode;

namespace {

// The protocol's code for a refusal of the state machine (aggregator_round.h lists the Status codes).
ErrorCode secagg_code(const Status& s) {
  switch (s.code()) {
    case StatusCode::kMismatch: return ErrorCode::kSecAggPhase;
    case StatusCode::kBusy: return ErrorCode::kSecAggRepeat;
    case StatusCode::kNotFound: return ErrorCode::kNotParticipant;
    case StatusCode::kOutOfRange: return ErrorCode::kSecAggPhase;  // the round is full or was abandoned
    default: return ErrorCode::kInvalidSecAggMessage;
  }
}

}  // namespace

// Finds the open masked round `round` of `task`; an error response when there is none. Caller holds mu_.
HttpResponse* Service::find_secagg(const std::string& task, const std::string& round, secagg::AggregatorRound** out, HttpResponse* err) {
  auto it = tasks_.find(task);
  if (it == tasks_.end()) return &(*err = error(ErrorCode::kUnknownTask, "no task " + task));
  if (it->second->spec.policy.secagg.mode != SecAggMode::kMasked)
    return &(*err = error(ErrorCode::kNoSecAgg, "task " + task + " does not aggregate securely"));
  uint64_t id = 0;
  if (!parse_u64(round, &id)) return &(*err = error(ErrorCode::kBadRound, "round must be a number"));
  TaskRounds& rounds = it->second->rounds;
  if (!rounds.round(id)) return &(*err = error(ErrorCode::kUnknownRound, "no round " + round + " in task " + task));
  *out = rounds.secagg_round(id);
  if (!*out) {
    protocol::ErrorReply e;
    e.code = ErrorCode::kRoundClosed;
    e.message = "round " + round + " is " + round_state_name(rounds.round(id)->state) + "; its secure aggregation is over";
    if (rounds.current()) e.current_round = rounds.current()->id;
    e.version = rounds.version();
    return &(*err = error_reply(e));
  }
  return nullptr;
}

HttpResponse Service::secagg_post(const std::string& task, const std::string& round, const std::string& step, const std::string& device,
                                  const std::string& body) {
  json j;
  HttpResponse err;
  if (!parse_body(body, &j, &err)) return err;
  std::lock_guard<std::mutex> lock(mu_);
  if (auto d = devices_.find(device); d == devices_.end() || d->second.revoked) return error(ErrorCode::kRevoked, "device " + device + " is revoked");
  secagg::AggregatorRound* a = nullptr;
  if (find_secagg(task, round, &a, &err)) return err;
  Status s;
  if (step == "keys") {
    uint64_t id = 0;
    parse_u64(round, &id);
    const TaskRounds& rounds = tasks_.at(task)->rounds;
    if (!rounds.sampled(id, device)) return error(ErrorCode::kNotSampled, "device " + device + " is not sampled for round " + round);
    if (Reply capped = enforce_token_cap(*tasks_.at(task), id, device)) return error(ErrorCode::kTokenCap, capped->body);
    auto m = secagg::parse_advertise_keys(j);
    s = m ? a->advertise(device, *m) : m.status();
  } else if (step == "shares") {
    auto m = secagg::parse_share_keys(j);
    s = m ? a->share_keys(device, *m) : m.status();
  } else if (step == "masked") {
    auto m = secagg::parse_masked_input(j);
    s = m ? a->masked_input(device, *m) : m.status();
  } else if (step == "unmask") {
    auto m = secagg::parse_unmask(j);
    s = m ? a->unmask(device, *m) : m.status();
  } else {
    return error(ErrorCode::kNotFound, "no secagg step " + step + " to post (keys, shares, masked, unmask)");
  }
  if (!s) {
    metrics_.count_submission("secagg_" + std::string(protocol::error_code_name(secagg_code(s))));
    return error(secagg_code(s), s.message());
  }
  metrics_.count_submission("secagg_" + step);
  return json_response(201, {{"task", task}, {"round", round}, {"step", step}, {"phase", secagg::AggregatorRound::phase_name(a->phase())},
                             {"received", a->received()}});
}

HttpResponse Service::secagg_get(const std::string& task, const std::string& round, const std::string& step, const std::string& device) {
  std::lock_guard<std::mutex> lock(mu_);
  HttpResponse err;
  secagg::AggregatorRound* a = nullptr;
  if (find_secagg(task, round, &a, &err)) return err;
  if (step == "roster") {
    auto r = a->roster(device);
    if (!r) return error(secagg_code(r.status()), r.status().message());
    return json_response(200, secagg::to_json(*r));
  }
  if (step == "inbox") {
    auto r = a->inbox(device);
    if (!r) return error(secagg_code(r.status()), r.status().message());
    return json_response(200, secagg::inbox_to_json(*r));
  }
  if (step == "survivors") {
    auto r = a->survivors_for(device);
    if (!r) return error(secagg_code(r.status()), r.status().message());
    return json_response(200, secagg::to_json(*r));
  }
  return error(ErrorCode::kNotFound, "no secagg step " + step + " to read (roster, inbox, survivors)");
}

}  // namespace pocketllm::server
