#include "pocketllm/federation/secure_submission.h"

#include <chrono>
#include <thread>

#include "pocketllm/common/json_util.h"
#include "pocketllm/secagg/device_round.h"
#include "pocketllm/secagg/wire.h"

namespace pocketllm {

using secagg::DeviceRound;

namespace {

// The phase (as the server names it) in which each step is taken.
const char* phase_of(SecureSubmission::Step s) {
  switch (s) {
    case SecureSubmission::Step::kAdvertise: return "advertise_keys";
    case SecureSubmission::Step::kShareKeys: return "share_keys";
    case SecureSubmission::Step::kMaskedInput: return "masked_input";
    case SecureSubmission::Step::kUnmask: return "unmask";
    default: return "";
  }
}

int phase_rank(const std::string& phase) {
  const char* order[] = {"advertise_keys", "share_keys", "masked_input", "unmask"};
  for (int i = 0; i < 4; ++i)
    if (phase == order[i]) return i;
  return 4;  // done, abandoned, or unknown: beyond every step
}

}  // namespace

const char* SecureSubmission::step_name(Step s) {
  switch (s) {
    case Step::kAdvertise: return "advertise";
    case Step::kShareKeys: return "share_keys";
    case Step::kMaskedInput: return "masked_input";
    case Step::kUnmask: return "unmask";
    case Step::kDone: return "done";
    case Step::kFailed: return "failed";
  }
  return "?";
}

SecureSubmission::~SecureSubmission() = default;

Result<std::unique_ptr<SecureSubmission>> SecureSubmission::create(const RoundInfo& round, const protocol::DevicePrivacy& privacy,
                                                                   const LocalRound& local) {
  if (!round.secagg.is_object() || !round.secagg.contains("config"))
    return invalid_argument("round " + std::to_string(round.round) + " is not a masked secure-aggregation round");
  auto config = secagg::parse_round_config(round.secagg["config"]);
  if (!config) return config.status();
  std::vector<float> coeffs = local.coeffs;
  if (privacy.on()) privatize(&coeffs, privacy);  // central mode: the clipping; the noise is in the encoding
  auto input = secagg::encode_input(config->input, coeffs, local.examples);
  if (!input) return input.status();
  auto device = DeviceRound::create(*config);
  if (!device) return device.status();
  std::unique_ptr<SecureSubmission> s(new SecureSubmission());
  s->round_ = round.round;
  s->device_ = std::move(device.value());
  s->input_ = std::move(input.value());
  return s;
}

bool SecureSubmission::fail(const std::string& why) {
  step_ = Step::kFailed;
  failure_ = why;
  device_.reset();  // the secrets go with it
  return false;
}

Result<bool> SecureSubmission::advance(FederationClient& client, const std::string& task) {
  if (step_ == Step::kDone || step_ == Step::kFailed) return false;
  auto round = client.round(task, round_);
  if (!round) return round.status();
  if (!round->open() || !round->secagg.is_object()) return fail("the round is " + std::string(protocol::round_state_name(round->state)));
  const int at = phase_rank(round->secagg["phase"].get<std::string>());
  const int mine = phase_rank(phase_of(step_));
  if (at < mine) return false;  // not yet
  if (at > mine) return fail(std::string("the round moved on to ") + round->secagg["phase"].get<std::string>() + " before this device's " + step_name(step_));
  return take_step(client, task);
}

// long: the four steps side by side, each a read of what the phase needs and one message.
Result<bool> SecureSubmission::take_step(FederationClient& client, const std::string& task) {
  auto exchange = [&](const char* method, const char* step, const std::string& body) -> Result<SecAggReply> {
    auto r = client.secagg(method, task, round_, step, body);
    if (r && !r->accepted) fail(std::string(step) + ": " + (r->error_name.empty() ? "HTTP " + std::to_string(r->status) : r->error_name) +
                                ": " + r->message);
    return r;
  };
  auto refused = [&](const Status& s) { return fail(s.message()); };
  switch (step_) {
    case Step::kAdvertise: {
      auto r = exchange("POST", "keys", secagg::to_json(device_->advertise()).dump());
      if (!r) return r.status();
      if (!r->accepted) return false;
      step_ = Step::kShareKeys;
      return true;
    }
    case Step::kShareKeys: {
      auto r = exchange("GET", "roster", "");
      if (!r) return r.status();
      if (!r->accepted) return false;
      auto roster = secagg::parse_roster(parse_json(r->body));
      if (!roster) return refused(roster.status());
      auto msg = device_->share_keys(*roster);
      if (!msg) return refused(msg.status());
      auto sent = exchange("POST", "shares", secagg::to_json(*msg).dump());
      if (!sent) return sent.status();
      if (!sent->accepted) return false;
      step_ = Step::kMaskedInput;
      return true;
    }
    case Step::kMaskedInput: {
      auto r = exchange("GET", "inbox", "");
      if (!r) return r.status();
      if (!r->accepted) return false;
      auto inbox = secagg::parse_inbox(parse_json(r->body));
      if (!inbox) return refused(inbox.status());
      auto msg = device_->masked_input(input_, *inbox);
      if (!msg) return refused(msg.status());
      auto sent = exchange("POST", "masked", secagg::to_json(*msg).dump());
      if (!sent) return sent.status();
      if (!sent->accepted) return false;
      step_ = Step::kUnmask;
      return true;
    }
    case Step::kUnmask: {
      auto r = exchange("GET", "survivors", "");
      if (!r) return r.status();
      if (!r->accepted) return false;
      auto survivors = secagg::parse_survivors(parse_json(r->body));
      if (!survivors) return refused(survivors.status());
      auto msg = device_->unmask(*survivors);
      if (!msg) return refused(msg.status());
      auto sent = exchange("POST", "unmask", secagg::to_json(*msg).dump());
      if (!sent) return sent.status();
      if (!sent->accepted) return false;
      step_ = Step::kDone;
      device_.reset();
      return true;
    }
    default:
      return false;
  }
}

Status SecureSubmission::run(FederationClient& client, const std::string& task, int poll_ms, int64_t timeout_ms) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (step_ != Step::kDone && step_ != Step::kFailed) {
    auto moved = advance(client, task);
    if (!moved) return moved.status();
    if (*moved) continue;
    if (std::chrono::steady_clock::now() >= end) return cancelled("secure aggregation: timed out waiting in step " + std::string(step_name(step_)));
    std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
  }
  if (step_ == Step::kFailed) return mismatch("secure aggregation: " + failure_);
  return Status::ok();
}

}  // namespace pocketllm
