// The endpoints devices read and write (docs/protocol.md section 3): tasks, rounds, submissions, the log,
// snapshots; and the metrics page.
#include <algorithm>
#include <cmath>
#include <limits>

#include "http_util.h"
#include "pocketllm/secagg/aggregator_round.h"
#include "pocketllm/secagg/wire.h"
#include "pocketllm/common/safetensors.h"
#include "pocketllm/common/sha256.h"
#include "pocketllm/common/update_log.h"
#include "service_internal.h"

namespace pocketllm::server {

using nlohmann::json;
using protocol::ErrorCode;

namespace {

protocol::RoundInfo round_info(const TaskSpec& spec, const Round& r, int64_t now) {
  protocol::RoundInfo info = protocol::round_of(training_spec(spec));
  info.round = r.id;
  info.state = r.state;
  info.base_version = r.base_version;
  info.seeds = r.seeds;
  info.deadline_ms = r.deadline_ms;
  info.server_time_ms = now;
  info.submissions = r.submission_count();
  return info;
}

}  // namespace

HttpResponse Service::list_tasks() {
  std::lock_guard<std::mutex> lock(mu_);
  json tasks = json::array();
  for (const auto& [id, t] : tasks_) tasks.push_back({{"id", id}, {"version", t->rounds.version()}, {"round", t->rounds.current() ? t->rounds.current()->id : 0}});
  return json_response(200, {{"tasks", tasks}});
}

HttpResponse Service::get_task(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tasks_.find(id);
  if (it == tasks_.end()) return error(ErrorCode::kUnknownTask, "no task " + id);
  const Task& t = *it->second;
  json out = task_spec_to_json(t.spec);
  out.erase("base_weights");  // a server path: not the devices' business
  protocol::TaskInfo status;
  status.version = t.rounds.version();
  status.round = t.rounds.current() ? t.rounds.current()->id : 0;
  status.snapshots = t.has_weights;
  protocol::write_task_status(status, &out);
  if (t.spec.policy.privacy.enabled()) {
    const PrivacyStatus p = t.rounds.privacy();
    out["privacy_status"] = {{"rounds_applied", p.rounds_applied}, {"epsilon_spent", p.epsilon_spent},
                             {"epsilon_target", t.spec.policy.privacy.target_epsilon}, {"delta", t.spec.policy.privacy.delta},
                             {"rounds_left", p.rounds_left}, {"state", p.exhausted ? "budget_spent" : "active"},
                             {"sampling", "poisson"}};
  }
  return json_response(200, out);
}

HttpResponse Service::get_round(const std::string& task, const std::string& round, bool admin, const std::string& device) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tasks_.find(task);
  if (it == tasks_.end()) return error(ErrorCode::kUnknownTask, "no task " + task);
  const Task& t = *it->second;
  const Round* r = nullptr;
  uint64_t id = 0;
  if (round == "current") r = t.rounds.current();
  else if (parse_u64(round, &id)) r = t.rounds.round(id);
  else return error(ErrorCode::kBadRound, "round must be a number");
  if (!r) return error(ErrorCode::kUnknownRound, "no round " + round + " in task " + task);
  protocol::RoundInfo info = round_info(t.spec, *r, now_ms());
  if (t.spec.policy.privacy.enabled() && !device.empty()) info.sampled = t.rounds.sampled(r->id, device);
  info.seed_groups = t.spec.policy.seed_groups;
  if (info.seed_groups > 1 && !device.empty()) {  // a device sees its own group's tau seeds
    info.group = protocol::seed_group(device, r->id, info.seed_groups);
    info.seeds = t.rounds.group_seeds(*r, *info.group);
  }
  if (!device.empty() && r->state == RoundState::kOpen) {  // the status page's participation
    auto& a = it->second->activity_of(r->id);
    if (a.fetched.size() < Task::kActivityDevices) a.fetched.insert(device);
  }
  if (r->secagg)
    info.secagg = {{"phase", secagg::AggregatorRound::phase_name(r->secagg->phase())},
                   {"phase_deadline_ms", r->secagg->phase() == secagg::AggregatorRound::Phase::kAdvertise ? r->deadline_ms : r->phase_deadline_ms},
                   {"received", r->secagg->received()},
                   {"config", secagg::to_json(t.rounds.secagg_config(r->id))}};
  json out = protocol::to_json(info);
  if (r->state == RoundState::kApplied) {
    // The versions this round's entries occupy: the next round's base is where they end.
    const Round* next = t.rounds.round(r->id + 1);
    out["applied_version"] = next ? next->base_version : t.rounds.version();
  }
  if (admin) {
    json subs = json::array();
    std::map<std::string, Submission> stored;  // a closed round's submissions live in the store only
    if (r->state != RoundState::kOpen) {
      std::lock_guard<std::mutex> store_lock(store_mu_);
      auto loaded = store_->load_submissions(task, r->id);
      if (!loaded) {
        store_failed("reading task " + task + " round " + std::to_string(r->id) + "'s submissions", loaded.status());
        return error(ErrorCode::kStoreUnavailable, "the round's submissions could not be read; retry");
      }
      for (auto& x : loaded.value()) stored.emplace(x.device, std::move(x));
    }
    for (const auto& [device, s] : r->state == RoundState::kOpen ? r->submissions : stored) {
      json c = json::array();
      for (float v : s.coeffs) c.push_back(static_cast<double>(v));
      subs.push_back({{"device", device}, {"coeffs", c}, {"examples", s.examples}, {"base_version", s.base_version}, {"weight", s.weight}});
    }
    out["submission_list"] = subs;
    out["extensions"] = r->extensions;
    if (!r->abandon_reason.empty()) out["abandon_reason"] = r->abandon_reason;  // memory only: since the last start
  }
  return json_response(200, out);
}

HttpResponse submission_reply(int status, const StoredSubmission& x, size_t submissions_in_round) {
  HttpResponse r;
  if (status == 503) {
    r = error(ErrorCode::kStoreUnavailable, "the submission was not saved; retry");
  } else {
    protocol::SubmissionReceipt receipt;
    receipt.task = x.task;
    receipt.round = x.round;
    receipt.duplicate = status == 200;
    receipt.weight = x.submission.weight;
    receipt.submissions = submissions_in_round;
    r = json_response(status, protocol::to_json(receipt));
  }
  r.route = "/v1/tasks/{task}/rounds/{round}/submissions";
  return r;
}

// The task's Sybil limit: a round takes at most max_per_token submissions (a masked round: advertised
// keys) from devices enrolled with one token. Returns the refusal's message (in the body) when this device
// would exceed it. Caller holds mu_.
Service::Reply Service::enforce_token_cap(const Task& t, uint64_t round_id, const std::string& device) {
  const Round* r = t.rounds.round(round_id);
  if (t.spec.max_per_token == 0 || !r) return std::nullopt;
  std::vector<std::string> in_round;
  if (r->secagg) in_round = r->secagg->advertised_devices();
  else for (const auto& [other, s] : r->submissions) in_round.push_back(other);
  if (std::find(in_round.begin(), in_round.end(), device) != in_round.end()) return std::nullopt;
  const std::string& token = devices_[device].token_sha256;
  if (token.empty()) return std::nullopt;
  uint32_t same = 0;
  for (const std::string& other : in_round) {
    auto d = devices_.find(other);
    same += d != devices_.end() && d->second.token_sha256 == token;
  }
  if (same < t.spec.max_per_token) return std::nullopt;
  HttpResponse why;
  why.body = "round " + std::to_string(round_id) + " already holds " + std::to_string(same) +
             " submissions from devices of this device's enrolment token (the task's max_per_token)";
  return why;
}

Service::Reply Service::submit(const std::string& task, const std::string& round, const std::string& device, const std::string& body,
                              Done& done) {
  auto reject = [&](ErrorCode code, const std::string& message) {
    metrics_.count_submission(protocol::error_code_name(code));
    return error(code, message);
  };
  json j;
  HttpResponse err;
  if (!parse_body(body, &j, &err)) {
    metrics_.count_submission("malformed_json");
    return err;
  }
  uint64_t round_id = 0;
  if (!parse_u64(round, &round_id)) return reject(ErrorCode::kBadRound, "round must be a number");
  protocol::SubmissionRequest req;
  if (auto rejection = protocol::parse_submission(j, &req)) return reject(rejection->code, rejection->message);
  Submission s;
  s.device = device;
  s.examples = req.examples;
  s.base_version = req.base_version;
  s.coeffs = std::move(req.coeffs);
  const std::string stats = j.contains("loss") ? json(req.loss).dump() : json::object().dump();
  std::lock_guard<std::mutex> lock(mu_);
  if (auto d = devices_.find(device); d == devices_.end() || d->second.revoked)  // revoked after it authenticated
    return reject(ErrorCode::kRevoked, "device " + device + " is revoked");
  auto it = tasks_.find(task);
  if (it == tasks_.end()) return reject(ErrorCode::kUnknownTask, "no task " + task);
  Task& t = *it->second;
  if (store_->shared() && (!t.rounds.current() || round_id > t.rounds.current()->id)) {
    // Replicas: the round may have opened through another server since this one's last refresh.
    std::lock_guard<std::mutex> store_lock(store_mu_);
    if (Status refreshed = refresh_task(t, false); !refreshed) {
      store_failed("refreshing task " + task + " for a submission", refreshed);
      return reject(ErrorCode::kStoreUnavailable, "the round could not be read from the store; retry");
    }
  }
  if (Reply capped = enforce_token_cap(t, round_id, device)) return reject(ErrorCode::kTokenCap, capped->body);
  ErrorCode rejection = ErrorCode::kInvalidSubmission;
  auto outcome = t.rounds.submit(round_id, s, &rejection);
  if (!outcome) {
    metrics_.count_submission(protocol::error_code_name(rejection));
    if (rejection == ErrorCode::kRoundClosed) ++t.activity_of(round_id).late;
    protocol::ErrorReply e;
    e.code = rejection;
    e.message = outcome.status().message();
    if (protocol::http_status(rejection) == 409) {
      if (t.rounds.current()) e.current_round = t.rounds.current()->id;
      e.version = t.rounds.version();
    }
    return error_reply(e);
  }
  const Round& r = *t.rounds.round(round_id);
  const PendingKey key{task, round_id, device};
  if (outcome.value() == SubmitOutcome::kAccepted) {
    auto& a = t.activity_of(round_id);
    if (a.submitted.size() < Task::kActivityDevices) a.submitted.insert(device);
    if (auto mean = req.loss.find("mean"); mean != req.loss.end()) {
      a.loss_sum += mean->second;
      ++a.loss_count;
    }
    // Held in memory, answered once the group commit that carries it is durable.
    pending_[key].push_back(std::move(done));
    {
      std::lock_guard<std::mutex> qlock(queue_mu_);
      // The enrolment token rides along only for a capped task (a shared store enforces the cap).
      queue_.push_back(StoredSubmission{task, round_id, r.submissions.at(device), stats, now_ms(),
                                        t.spec.max_per_token ? devices_[device].token_sha256 : std::string(), t.spec.max_per_token});
    }
    queue_cv_.notify_one();
    return std::nullopt;
  }
  if (auto p = pending_.find(key); p != pending_.end()) {  // the same submission, not yet durable: wait with it
    p->second.push_back(std::move(done));
    return std::nullopt;
  }
  metrics_.count_submission("duplicate");
  return submission_reply(200, StoredSubmission{task, round_id, r.submissions.at(device), "", 0, "", 0}, r.submissions.size());
}

HttpResponse Service::get_log(const std::string& task, const std::map<std::string, std::string>& query) {
  uint64_t since = 0, limit = 1000;
  if (query.count("since") && !parse_u64(query.at("since"), &since)) return error(ErrorCode::kBadQuery, "since must be a version number");
  if (query.count("limit") && (!parse_u64(query.at("limit"), &limit) || limit == 0))
    return error(ErrorCode::kBadQuery, "limit must be a positive number");
  limit = std::min<uint64_t>(limit, opt_.max_log_page);
  const std::string format = query.count("format") ? query.at("format") : "json";
  if (format != "json" && format != "binary") return error(ErrorCode::kBadQuery, "format must be json or binary");
  UpdateLog page;
  uint64_t version = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tasks_.find(task);
    if (it == tasks_.end()) return error(ErrorCode::kUnknownTask, "no task " + task);
    version = it->second->rounds.version();
    if (since > version) return error(ErrorCode::kBeyondLog, "since " + std::to_string(since) + " is beyond the log's version " + std::to_string(version));
    page = it->second->rounds.log().slice(since, since + limit);
  }
  const uint64_t next = since + page.size();
  if (format == "binary") {
    HttpResponse r;
    r.content_type = "application/octet-stream";
    r.body = page.to_binary();
    r.headers.emplace_back("X-Pocketllm-Version", std::to_string(version));
    r.headers.emplace_back("X-Pocketllm-Since", std::to_string(since));
    r.headers.emplace_back("X-Pocketllm-Next", std::to_string(next));
    return r;
  }
  json entries = json::array();
  for (const auto& e : page.entries()) entries.push_back({{"seed", seed_to_hex(e.seed)}, {"coeff", static_cast<double>(e.coeff)}});
  return json_response(200, {{"task", task}, {"version", version}, {"since", since}, {"next", next}, {"complete", next == version}, {"entries", entries}});
}

HttpResponse Service::render_metrics() {
  std::vector<std::pair<std::string, double>> gauges;
  {
    std::lock_guard<std::mutex> lock(mu_);
    size_t revoked = 0;
    for (const auto& [id, d] : devices_) revoked += d.revoked;
    gauges.emplace_back("pocketllm_devices{state=\"active\"}", static_cast<double>(devices_.size() - revoked));
    gauges.emplace_back("pocketllm_devices{state=\"revoked\"}", static_cast<double>(revoked));
    for (const auto& [id, t] : tasks_) gauges.emplace_back("pocketllm_task_version{task=\"" + id + "\"}", static_cast<double>(t->rounds.version()));
    for (const auto& [id, t] : tasks_)
      gauges.emplace_back("pocketllm_task_round{task=\"" + id + "\"}", t->rounds.current() ? static_cast<double>(t->rounds.current()->id) : 0.0);
    for (const auto& [id, t] : tasks_)
      gauges.emplace_back("pocketllm_round_submissions{task=\"" + id + "\"}",
                          t->rounds.current() ? static_cast<double>(t->rounds.current()->submissions.size()) : 0.0);
    for (const auto& [id, t] : tasks_) {
      if (!t->spec.policy.privacy.enabled()) continue;
      const PrivacyStatus p = t->rounds.privacy();
      gauges.emplace_back("pocketllm_task_epsilon_spent{task=\"" + id + "\"}", p.epsilon_spent);
      gauges.emplace_back("pocketllm_task_epsilon_target{task=\"" + id + "\"}", t->spec.policy.privacy.target_epsilon);
      gauges.emplace_back("pocketllm_task_privacy_rounds_left{task=\"" + id + "\"}", static_cast<double>(p.rounds_left));
    }
  }
  HttpResponse r;
  r.content_type = "text/plain; version=0.0.4";
  r.body = metrics_.render(gauges);
  return r;
}

}  // namespace pocketllm::server
