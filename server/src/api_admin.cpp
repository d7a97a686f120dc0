// The operator's endpoints (docs/protocol.md section 3): tasks, enrolment tokens, enrolment, revocation,
// closing a round.
#include <algorithm>
#include <cmath>
#include <limits>

#include "http_util.h"
#include "pocketllm/secagg/aggregator_round.h"
#include "pocketllm/common/safetensors.h"
#include "pocketllm/common/sha256.h"
#include "pocketllm/common/update_log.h"
#include "service_internal.h"

namespace pocketllm::server {

using nlohmann::json;
using protocol::ErrorCode;

HttpResponse Service::create_task(const std::string& body) {
  json j;
  HttpResponse err;
  if (!parse_body(body, &j, &err)) return err;
  auto spec = parse_task_spec(j);
  if (!spec) return error(ErrorCode::kInvalidTask, spec.status().message());
  if (store_->shared() && spec->policy.secagg.mode == SecAggMode::kMasked)
    return error(ErrorCode::kInvalidTask,
                 "secagg mode masked needs a single server: its phase state lives in one server's memory (use mode plain, "
                 "or a server with its own SQLite store)");
  StoredTask stored;
  stored.id = spec->id;
  stored.spec_json = task_spec_to_json(spec.value()).dump();
  uint64_t key = spec->seed_key;
  if (!spec->has_seed_key) seed_from_hex(random_hex(8), &key);
  stored.seed_key = key;
  if (spec->policy.privacy.enabled()) seed_from_hex(random_hex(8), &stored.sampling_key);  // secret, unlike the seeds
  std::lock_guard<std::mutex> lock(mu_);
  stored.created_ms = now_ms();
  if (tasks_.count(stored.id)) return error(ErrorCode::kTaskExists, "task " + stored.id + " already exists");
  auto task = std::make_unique<Task>(spec.value(), stored);
  if (!spec->base_weights.empty()) {
    auto file = SafetensorsFile::open(spec->base_weights);
    if (!file) return error(ErrorCode::kInvalidTask, "task.base_weights: " + file.status().message());
  }
  auto first = task->rounds.open_round(stored.created_ms);
  if (!first) return error(ErrorCode::kInvalidTask, first.status().message());
  std::lock_guard<std::mutex> store_lock(store_mu_);
  Status saved = store_->insert_task(stored, first.value());
  if (!saved && saved.code() == StatusCode::kMismatch) return error(ErrorCode::kTaskExists, "task " + stored.id + " already exists");
  if (!saved) {
    store_failed("saving task " + stored.id, saved);
    return error(ErrorCode::kStoreUnavailable, "the task was not saved; retry");
  }
  Status loaded = load_task(stored, true);  // the one path that builds a task, snapshots included
  if (!loaded) return error(ErrorCode::kInternal, loaded.message());
  log("task " + stored.id + " created");
  json out = task_spec_to_json(spec.value());
  out["version"] = 0;
  out["round"] = 1;
  return json_response(201, out);
}

HttpResponse Service::create_enrol_token(const std::string& body) {
  json j;
  HttpResponse err;
  if (!parse_body(body.empty() ? std::string("{}") : body, &j, &err)) return err;
  for (auto it = j.begin(); it != j.end(); ++it)
    if (it.key() != "uses" && it.key() != "ttl_seconds") return error(ErrorCode::kUnknownField, "unknown field " + it.key());
  double uses = 1, ttl = 86400;
  if (j.contains("uses") && (!j["uses"].is_number_integer() || j["uses"].get<double>() < 1 || j["uses"].get<double>() > 1e6))
    return error(ErrorCode::kInvalidField, "uses must be an integer in [1, 1000000]");
  if (j.contains("uses")) uses = j["uses"].get<double>();
  if (j.contains("ttl_seconds") && (!j["ttl_seconds"].is_number() || !(j["ttl_seconds"].get<double>() >= 1) || j["ttl_seconds"].get<double>() > 365.0 * 86400))
    return error(ErrorCode::kInvalidField, "ttl_seconds must be a number in [1, 31536000]");
  if (j.contains("ttl_seconds")) ttl = j["ttl_seconds"].get<double>();
  const std::string token = "et_" + random_hex(24);
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = now_ms();
  const int64_t expires = now + static_cast<int64_t>(ttl * 1000);
  std::lock_guard<std::mutex> store_lock(store_mu_);
  Status s = store_->insert_enrol_token(sha256_hex(token), static_cast<uint32_t>(uses), expires, now);
  if (!s) {
    store_failed("saving an enrolment token", s);
    return error(ErrorCode::kStoreUnavailable, "the token was not saved; retry");
  }
  return json_response(201, {{"token", token}, {"uses", static_cast<uint32_t>(uses)}, {"expires_ms", expires}});
}

HttpResponse Service::enrol(const std::string& body) {
  json j;
  HttpResponse err;
  if (!parse_body(body, &j, &err)) return err;
  protocol::EnrolRequest req;
  if (auto rejection = protocol::parse_enrol_request(j, &req)) return error(rejection->code, rejection->message);
  StoredDevice d;
  d.id = "d_" + random_hex(8);
  const std::string secret = random_hex(32);
  d.secret_sha256 = sha256_hex(secret);
  d.token_sha256 = sha256_hex(req.token);
  std::lock_guard<std::mutex> lock(mu_);
  d.created_ms = now_ms();
  std::lock_guard<std::mutex> store_lock(store_mu_);
  Status s = store_->enrol_device(d.token_sha256, d, d.created_ms);
  if (s.code() == StatusCode::kNotFound) return error(ErrorCode::kInvalidEnrolmentToken, s.message());
  if (!s) {
    store_failed("saving an enrolled device", s);
    return error(ErrorCode::kStoreUnavailable, "enrolment was not saved; retry");
  }
  devices_[d.id] = {d.secret_sha256, false, d.token_sha256};
  log("device " + d.id + " enrolled");
  return json_response(201, protocol::to_json(protocol::EnrolReply{d.id, d.id + "." + secret}));
}

HttpResponse Service::list_devices(const std::map<std::string, std::string>& query) {
  uint64_t limit = 1000;
  if (query.count("limit") && (!parse_u64(query.at("limit"), &limit) || limit == 0 || limit > 10000))
    return error(ErrorCode::kBadQuery, "limit must be 1..10000");
  const std::string after = query.count("after") ? query.at("after") : "";
  std::lock_guard<std::mutex> lock(mu_);
  std::lock_guard<std::mutex> store_lock(store_mu_);
  auto devices = store_->load_devices();  // the store's list: a replica's memory holds only the devices it saw
  if (!devices) {
    store_failed("reading the devices", devices.status());
    return error(ErrorCode::kStoreUnavailable, "the devices could not be read; retry");
  }
  std::sort(devices->begin(), devices->end(), [](const StoredDevice& a, const StoredDevice& b) { return a.id < b.id; });
  json list = json::array();
  std::string next;
  for (const StoredDevice& d : devices.value()) {
    if (d.id <= after) continue;
    if (list.size() == limit) {
      next = list.back()["id"].get<std::string>();
      break;
    }
    list.push_back({{"id", d.id}, {"created_ms", d.created_ms}, {"revoked", d.revoked},
                    {"token", d.token_sha256.substr(0, 12)}});  // which enrolment token (a prefix of its hash)
  }
  json out = {{"devices", list}, {"total", devices->size()}};
  if (!next.empty()) out["next"] = next;
  return json_response(200, out);
}

HttpResponse Service::revoke(const std::string& device) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = devices_.find(device);
    if (it == devices_.end() && store_->shared() && find_device_in_store(device)) it = devices_.find(device);  // enrolled elsewhere
    if (it == devices_.end()) return error(ErrorCode::kUnknownDevice, "no device " + device);
    it->second.revoked = true;  // from here no request of the device is accepted
  }
  flush();  // its submissions accepted before now are durable before they are dropped
  std::lock_guard<std::mutex> lock(mu_);
  std::lock_guard<std::mutex> store_lock(store_mu_);
  Status s = store_->revoke_device(device, now_ms());
  if (!s) {
    devices_[device].revoked = false;  // memory follows the store
    store_failed("saving the revocation of device " + device, s);
    return error(ErrorCode::kStoreUnavailable, "the revocation was not saved; retry");
  }
  size_t dropped = 0;
  for (auto& [id, t] : tasks_) {
    const Round* r = t->rounds.current();
    if (r && r->state == RoundState::kOpen && r->submissions.count(device)) {
      t->rounds.withdraw(r->id, device);
      ++dropped;
    }
  }
  log("device " + device + " revoked; " + std::to_string(dropped) + " pending submissions dropped");
  return json_response(200, {{"device_id", device}, {"revoked", true}, {"dropped_submissions", dropped}});
}

HttpResponse Service::close_round(const std::string& task, const std::string& round, const std::string& phase) {
  uint64_t id = 0;
  if (!parse_u64(round, &id)) return error(ErrorCode::kBadRound, "round must be a number");
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tasks_.find(task);
    if (it == tasks_.end()) return error(ErrorCode::kUnknownTask, "no task " + task);
    const Round* r = it->second->rounds.round(id);
    if (!phase.empty() && (!r || !r->secagg))
      return error(ErrorCode::kNoSecAgg, "round " + round + " is not an open masked round: no phase to close");
    const bool other_phase = !phase.empty() && secagg::AggregatorRound::phase_name(r->secagg->phase()) != phase;
    if (!other_phase) {  // (in another phase: nothing to do; the round as it is comes back)
      Status s = it->second->rounds.close_now(id, now_ms());
      if (s.code() == StatusCode::kNotFound) return error(ErrorCode::kUnknownRound, s.message());
      if (!s) return error(ErrorCode::kRoundClosed, s.message());
      if (!store_->shared()) {
        tick_task(*it->second, now_ms());
      } else {
        // Replicas: the leader closes it now; another server moves the deadline in the store, where the
        // leader's next tick finds it.
        std::lock_guard<std::mutex> store_lock(store_mu_);
        if (store_->try_lead()) {
          close_due(*it->second, now_ms());
        } else if (!store_->update_round(task, *it->second->rounds.round(id), nullptr)) {
          (void)refresh_task(*it->second, true);
          return error(ErrorCode::kRoundClosed, "round " + round + " is no longer open");
        }
      }
    }
  }
  return get_round(task, round, true);
}

}  // namespace pocketllm::server
