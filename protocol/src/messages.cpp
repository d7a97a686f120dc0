#include "pocketllm/protocol/messages.h"
#include "pocketllm/common/json_util.h"

#include <cmath>
#include <limits>
#include <type_traits>

#include "pocketllm/common/seeds.h"
#include "pocketllm/common/update_log.h"

namespace pocketllm::protocol {
namespace {

using nlohmann::json;

// Reads j[key] as T; false when it is missing, of another type, or out of T's range (a JSON number
// converted to a narrower type would otherwise be undefined behaviour: 4e95 as a uint32).
template <class T>
bool get(const json& j, const char* key, T* out) {
  auto it = j.find(key);
  if (it == j.end()) return false;
  if constexpr (std::is_same_v<T, bool>) {
    if (!it->is_boolean()) return false;
  } else if constexpr (std::is_integral_v<T>) {
    if (it->is_number_unsigned()) {
      const uint64_t v = it->get<uint64_t>();
      if (v > static_cast<uint64_t>(std::numeric_limits<T>::max())) return false;
      *out = static_cast<T>(v);
      return true;
    }
    if (!it->is_number_integer()) return false;
    const int64_t v = it->get<int64_t>();
    if (v < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
        (v > 0 && static_cast<uint64_t>(v) > static_cast<uint64_t>(std::numeric_limits<T>::max())))
      return false;
    *out = static_cast<T>(v);
    return true;
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!it->is_number()) return false;
    const double v = it->get<double>();
    if (!std::isfinite(v) || std::fabs(v) > static_cast<double>(std::numeric_limits<T>::max())) return false;
    *out = static_cast<T>(v);
    return true;
  }
  try {
    *out = it->get<T>();
    return true;
  } catch (const json::exception&) {
    return false;
  }
}

json parse_object(const std::string& body) {
  json j = parse_json(body);
  return j.is_object() ? j : json();
}

Status unexpected(const char* what, const char* field) {
  return corrupt(std::string(what) + ": unexpected reply from the server (field '" + field + "')");
}

}  // namespace

// ---- endpoints ----
std::string enrol_path() { return "/v1/enrol"; }
std::string task_path(const std::string& task) { return "/v1/tasks/" + task; }
std::string current_round_path(const std::string& task) { return task_path(task) + "/round"; }
std::string round_path(const std::string& task, uint64_t round) { return task_path(task) + "/rounds/" + std::to_string(round); }
std::string submissions_path(const std::string& task, uint64_t round) { return round_path(task, round) + "/submissions"; }
std::string secagg_path(const std::string& task, uint64_t round, const std::string& step) {
  return round_path(task, round) + "/secagg/" + step;
}
std::string log_path(const std::string& task, uint64_t since, uint64_t limit, bool binary) {
  return task_path(task) + "/log?" + (binary ? "format=binary&" : "") + "limit=" + std::to_string(limit) + "&since=" + std::to_string(since);
}
std::string snapshot_path(const std::string& task) { return task_path(task) + "/snapshot"; }

// ---- errors ----
json to_json(const ErrorReply& e) {
  json j = {{"error", {{"code", e.code_name.empty() ? error_code_name(e.code) : e.code_name}, {"message", e.message}}}};
  if (e.current_round) j["current_round"] = *e.current_round;
  if (e.version) j["version"] = *e.version;
  return j;
}

std::optional<ErrorReply> parse_error_reply(const std::string& body) {
  const json j = parse_object(body);
  if (!j.is_object() || !j.contains("error") || !j["error"].is_object()) return std::nullopt;
  ErrorReply e;
  if (!get(j["error"], "code", &e.code_name)) return std::nullopt;
  get(j["error"], "message", &e.message);
  e.code = parse_error_code(e.code_name);
  uint64_t v = 0;
  if (get(j, "current_round", &v)) e.current_round = v;
  if (get(j, "version", &v)) e.version = v;
  return e;
}

// ---- enrolment ----
json to_json(const EnrolRequest& r) { return {{"token", r.token}}; }

std::optional<Rejection> parse_enrol_request(const json& j, EnrolRequest* out) {
  if (!get(j, "token", &out->token) || out->token.size() > 256) return Rejection{ErrorCode::kWrongType, "token (string) is required"};
  return std::nullopt;
}

json to_json(const EnrolReply& r) { return {{"device_id", r.device_id}, {"credential", r.credential}}; }

Result<EnrolReply> parse_enrol_reply(const std::string& body) {
  const json j = parse_object(body);
  EnrolReply r;
  if (!get(j, "device_id", &r.device_id)) return unexpected("enrolment", "device_id");
  if (!get(j, "credential", &r.credential)) return unexpected("enrolment", "credential");
  return r;
}

// ---- tasks ----
void write_training_spec(const TaskInfo& t, json* j) {
  json& o = *j;
  o["id"] = t.id;
  o["base_model_id"] = t.base_model_id;
  o["trainable"] = t.trainable;
  o["dist"] = distribution_name(t.dist);
  o["eps"] = t.eps;
  o["lr"] = t.lr;
  o["batch_size"] = t.batch_size;
  o["tau"] = t.tau;
  o["device"] = t.device;
  if (t.privacy.on())
    o["privacy"] = {{"mode", t.privacy.mode}, {"clip_norm", t.privacy.clip_norm}, {"noise_multiplier", t.privacy.noise_multiplier}};
  if (t.secagg != "off") o["secagg"] = {{"mode", t.secagg}};
}

void write_task_status(const TaskInfo& t, json* j) {
  (*j)["version"] = t.version;
  (*j)["round"] = t.round;
  (*j)["snapshots"] = t.snapshots;
}

Result<TaskInfo> parse_task_info(const std::string& body) {
  const json j = parse_object(body);
  TaskInfo t;
  std::string dist;
  const char* missing = nullptr;
  if (!get(j, "id", &t.id)) missing = "id";
  else if (!get(j, "base_model_id", &t.base_model_id)) missing = "base_model_id";
  else if (!get(j, "trainable", &t.trainable)) missing = "trainable";
  else if (!get(j, "dist", &dist) || !parse_distribution(dist, &t.dist)) missing = "dist";
  else if (!get(j, "lr", &t.lr)) missing = "lr";
  else if (!get(j, "eps", &t.eps)) missing = "eps";
  else if (!get(j, "batch_size", &t.batch_size)) missing = "batch_size";
  else if (!get(j, "tau", &t.tau)) missing = "tau";
  else if (!get(j, "version", &t.version)) missing = "version";
  else if (!get(j, "round", &t.round)) missing = "round";
  if (missing) return unexpected("task", missing);
  get(j, "snapshots", &t.snapshots);
  if (j.contains("device")) {
    if (!j["device"].is_object()) return unexpected("task", "device");
    t.device = j["device"];
  }
  if (j.contains("privacy")) {
    const json& p = j["privacy"];
    if (!p.is_object() || !get(p, "mode", &t.privacy.mode) ||
        (t.privacy.mode != "off" && t.privacy.mode != "central" && t.privacy.mode != "local"))
      return unexpected("task", "privacy.mode");
    if (t.privacy.on()) {
      if (!get(p, "clip_norm", &t.privacy.clip_norm) || !(t.privacy.clip_norm > 0) || !std::isfinite(t.privacy.clip_norm))
        return unexpected("task", "privacy.clip_norm");
      get(p, "noise_multiplier", &t.privacy.noise_multiplier);
      if (!(t.privacy.noise_multiplier >= 0) || !std::isfinite(t.privacy.noise_multiplier))
        return unexpected("task", "privacy.noise_multiplier");
    }
  }
  if (j.contains("secagg")) {
    const json& a = j["secagg"];
    if (!a.is_object() || !get(a, "mode", &t.secagg) || (t.secagg != "off" && t.secagg != "masked" && t.secagg != "plain"))
      return unexpected("task", "secagg.mode");
  }
  return t;
}

// ---- rounds ----
const char* round_state_name(RoundState s) {
  switch (s) {
    case RoundState::kOpen: return "open";
    case RoundState::kApplied: return "applied";
    case RoundState::kAbandoned: return "abandoned";
  }
  return "?";
}

bool parse_round_state(const std::string& name, RoundState* out) {
  for (RoundState s : {RoundState::kOpen, RoundState::kApplied, RoundState::kAbandoned})
    if (name == round_state_name(s)) {
      *out = s;
      return true;
    }
  return false;
}

uint32_t seed_group(const std::string& device_id, uint64_t round, uint32_t groups) {
  if (groups <= 1) return 0;
  return static_cast<uint32_t>(splitmix64(fnv1a64(device_id.data(), device_id.size()) ^ splitmix64(round)) % groups);
}

RoundInfo round_of(const TaskInfo& task) {
  RoundInfo r;
  r.task = task.id;
  r.lr = task.lr;
  r.eps = task.eps;
  r.batch_size = task.batch_size;
  r.dist = task.dist;
  r.trainable = task.trainable;
  return r;
}

json to_json(const RoundInfo& r) {
  json seeds = json::array();
  for (uint64_t s : r.seeds) seeds.push_back(seed_to_hex(s));
  json j = {{"task", r.task},         {"round", r.round},
            {"state", round_state_name(r.state)}, {"base_version", r.base_version},
            {"tau", r.seed_groups > 1 && !r.group ? r.seeds.size() / r.seed_groups : r.seeds.size()},  {"seeds", seeds},
            {"lr", r.lr},             {"eps", r.eps},
            {"batch_size", r.batch_size}, {"dist", distribution_name(r.dist)},
            {"trainable", r.trainable}, {"deadline_ms", r.deadline_ms},
            {"server_time_ms", r.server_time_ms}, {"submissions", r.submissions}};
  if (r.applied_version) j["applied_version"] = *r.applied_version;
  if (r.sampled) j["sampled"] = *r.sampled;
  if (r.seed_groups > 1) j["seed_groups"] = r.seed_groups;
  if (r.group) j["group"] = *r.group;
  if (r.secagg.is_object()) j["secagg"] = r.secagg;
  return j;
}

Result<RoundInfo> parse_round_info(const std::string& body) {
  const json j = parse_object(body);
  RoundInfo r;
  std::string state, dist;
  std::vector<std::string> seeds;
  const char* missing = nullptr;
  if (!get(j, "task", &r.task)) missing = "task";
  else if (!get(j, "round", &r.round)) missing = "round";
  else if (!get(j, "state", &state) || !parse_round_state(state, &r.state)) missing = "state";
  else if (!get(j, "base_version", &r.base_version)) missing = "base_version";
  else if (!get(j, "seeds", &seeds)) missing = "seeds";
  else if (!get(j, "lr", &r.lr)) missing = "lr";
  else if (!get(j, "eps", &r.eps)) missing = "eps";
  else if (!get(j, "batch_size", &r.batch_size)) missing = "batch_size";
  else if (!get(j, "dist", &dist) || !parse_distribution(dist, &r.dist)) missing = "dist";
  else if (!get(j, "deadline_ms", &r.deadline_ms)) missing = "deadline_ms";
  if (missing) return unexpected("round", missing);
  if (get(j, "seed_groups", &r.seed_groups) && (r.seed_groups == 0 || r.seed_groups > kMaxSeedGroups))
    return unexpected("round", "seed_groups");
  uint32_t group = 0;
  if (get(j, "group", &group)) {
    if (group >= r.seed_groups) return unexpected("round", "group");
    r.group = group;
  }
  if (seeds.size() > (r.seed_groups > 1 && !r.group ? kMaxRoundSeeds : kMaxScalars)) return unexpected("round", "seeds");
  for (const auto& s : seeds) {
    uint64_t v;
    if (!seed_from_hex(s, &v)) return corrupt("round: bad seed " + s.substr(0, 32));
    r.seeds.push_back(v);
  }
  get(j, "trainable", &r.trainable);
  get(j, "server_time_ms", &r.server_time_ms);
  get(j, "submissions", &r.submissions);
  uint64_t applied = 0;
  if (get(j, "applied_version", &applied)) r.applied_version = applied;
  bool sampled = true;
  if (get(j, "sampled", &sampled)) r.sampled = sampled;
  if (j.contains("secagg")) {
    if (!j["secagg"].is_object() || !j["secagg"].contains("phase") || !j["secagg"]["phase"].is_string() ||
        !j["secagg"].contains("config") || !j["secagg"]["config"].is_object())
      return unexpected("round", "secagg");
    r.secagg = j["secagg"];
  }
  return r;
}

// ---- submissions ----
json to_json(const SubmissionRequest& s) {
  json c = json::array();
  for (float v : s.coeffs) c.push_back(static_cast<double>(v));
  json j = {{"coeffs", c}, {"examples", s.examples}, {"base_version", s.base_version}};
  if (!s.loss.empty()) j["loss"] = s.loss;
  return j;
}

namespace {
std::optional<Rejection> parse_loss(const json& loss, std::map<std::string, double>* out) {
  if (!loss.is_object() || loss.size() > 8) return Rejection{ErrorCode::kWrongType, "loss must be an object of at most 8 numbers"};
  for (auto it = loss.begin(); it != loss.end(); ++it) {
    if (!it.value().is_number() || !std::isfinite(it.value().get<double>()) || it.key().size() > 32)
      return Rejection{ErrorCode::kNonFinite, "loss." + it.key() + " must be a finite number"};
    (*out)[it.key()] = it.value().get<double>();
  }
  return std::nullopt;
}
}  // namespace

std::optional<Rejection> parse_submission(const json& j, SubmissionRequest* out) {
  for (auto it = j.begin(); it != j.end(); ++it)
    if (it.key() != "coeffs" && it.key() != "examples" && it.key() != "base_version" && it.key() != "loss")
      return Rejection{ErrorCode::kUnknownField, "unknown field " + it.key()};
  if (!j.contains("coeffs") || !j["coeffs"].is_array()) return Rejection{ErrorCode::kWrongType, "coeffs (array of numbers) is required"};
  if (!j.contains("examples") || !j["examples"].is_number_unsigned())
    return Rejection{ErrorCode::kWrongType, "examples (a positive integer) is required"};
  if (!j.contains("base_version") || !j["base_version"].is_number_unsigned())
    return Rejection{ErrorCode::kWrongType, "base_version (the log version the scalars were computed from) is required"};
  out->examples = j["examples"].get<uint64_t>();
  out->base_version = j["base_version"].get<uint64_t>();
  if (j["coeffs"].size() > kMaxScalars) return Rejection{ErrorCode::kWrongCount, "more scalars than any round has seeds"};
  out->coeffs.clear();
  for (const auto& v : j["coeffs"]) {
    if (!v.is_number()) return Rejection{ErrorCode::kWrongType, "coeffs must hold numbers only"};
    const double d = v.get<double>();
    if (!std::isfinite(d) || std::fabs(d) > std::numeric_limits<float>::max())
      return Rejection{ErrorCode::kNonFinite, "a scalar is not a finite float32"};
    out->coeffs.push_back(static_cast<float>(d));
  }
  if (out->examples == 0 || out->examples > kMaxExamples) return Rejection{ErrorCode::kBadExamples, "examples must be in [1, 2^40]"};
  if (j.contains("loss")) return parse_loss(j["loss"], &out->loss);
  return std::nullopt;
}

json to_json(const SubmissionReceipt& r) {
  return {{"task", r.task}, {"round", r.round}, {"accepted", true}, {"duplicate", r.duplicate}, {"weight", r.weight}, {"submissions", r.submissions}};
}

Result<SubmissionReceipt> parse_submission_receipt(const std::string& body) {
  const json j = parse_object(body);
  SubmissionReceipt r;
  if (!get(j, "task", &r.task)) return unexpected("submission", "task");
  if (!get(j, "round", &r.round)) return unexpected("submission", "round");
  get(j, "duplicate", &r.duplicate);
  get(j, "weight", &r.weight);
  get(j, "submissions", &r.submissions);
  return r;
}

}  // namespace pocketllm::protocol
