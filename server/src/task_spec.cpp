#include "pocketllm/server/task_spec.h"

#include <cmath>

#include "pocketllm/common/update_log.h"
#include "pocketllm/privacy/accountant.h"
#include "pocketllm/protocol/messages.h"
#include "range_text.h"

namespace pocketllm::server {
namespace {

using nlohmann::json;

Status field_error(const std::string& name, const std::string& what) { return invalid_argument("task." + name + ": " + what); }

template <class T>
Status get_number(const json& j, const char* name, T lo, T hi, T* out) {
  if (!j.contains(name)) return Status::ok();
  const json& v = j.at(name);
  if (!v.is_number()) return field_error(name, "must be a number");
  const double d = v.get<double>();
  if (!std::isfinite(d) || d < static_cast<double>(lo) || d > static_cast<double>(hi))
    return field_error(name, "must be in " + range_text(static_cast<double>(lo), static_cast<double>(hi)));
  if (std::is_integral<T>::value && d != std::floor(d)) return field_error(name, "must be an integer");
  *out = static_cast<T>(d);
  return Status::ok();
}

Status get_string(const json& j, const char* name, std::string* out) {
  if (!j.contains(name)) return Status::ok();
  if (!j.at(name).is_string()) return field_error(name, "must be a string");
  *out = j.at(name).get<std::string>();
  return Status::ok();
}

bool is_hex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// "privacy": {"mode", "clip_norm", "noise_multiplier" | "planned_rounds", "sampling_rate", "target_epsilon",
// "delta", "expected_participants"} (docs/privacy.md), checked so that a configuration that protects
// nobody, or that not even one round fits, is refused at creation.
// long: one check per field, each with its own message, in the order docs/privacy.md lists them.
Status parse_privacy(const json& j, const RoundPolicy& policy, PrivacyPolicy* out) {
  static const char* kKnown[] = {"mode", "clip_norm", "noise_multiplier", "planned_rounds", "sampling_rate", "target_epsilon",
                                 "delta", "expected_participants"};
  if (!j.is_object()) return field_error("privacy", "must be an object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool known = false;
    for (const char* k : kKnown) known = known || it.key() == k;
    if (!known) return field_error("privacy." + it.key(), "unknown field");
  }
  PrivacyPolicy p;
  std::string mode;
  POCKETLLM_RETURN_IF_ERROR(get_string(j, "mode", &mode));
  if (!parse_dp_mode(mode, &p.mode)) return field_error("privacy.mode", "required: central (the server adds the noise) or local (devices do)");
  if (!p.enabled()) {
    *out = p;
    return Status::ok();
  }
  for (const char* required : {"clip_norm", "sampling_rate", "target_epsilon", "delta"})
    if (!j.contains(required)) return field_error(std::string("privacy.") + required, "required for a private task");
  // Errors name the field inside "privacy".
  auto number = [&j](const char* key, double lo, double hi, double* out) -> Status {
    Status s = get_number(j, key, lo, hi, out);
    if (s) return s;
    return invalid_argument("task.privacy." + s.message().substr(std::string("task.").size()));
  };
  POCKETLLM_RETURN_IF_ERROR(number("clip_norm", 1e-12, 1e6, &p.clip_norm));
  POCKETLLM_RETURN_IF_ERROR(number("sampling_rate", 1e-9, 1.0, &p.sampling_rate));
  POCKETLLM_RETURN_IF_ERROR(number("target_epsilon", 1e-3, 100.0, &p.target_epsilon));
  if (!j["delta"].is_number() || !(j["delta"].get<double>() > 0) || j["delta"].get<double>() > 1e-3)
    return field_error("privacy.delta", "must be in (0, 0.001]: a delta near 1 / (number of devices) or above protects nobody");
  p.delta = j["delta"].get<double>();
  if (j.contains("noise_multiplier")) {
    POCKETLLM_RETURN_IF_ERROR(number("noise_multiplier", 1e-3, 1e4, &p.noise_multiplier));
  } else {
    uint64_t planned = 0;
    if (!j.contains("planned_rounds")) return field_error("privacy.noise_multiplier", "give it, or planned_rounds to calibrate it to the target");
    POCKETLLM_RETURN_IF_ERROR(get_number<uint64_t>(j, "planned_rounds", 1, 1000000, &planned));
    try {
      p.noise_multiplier = privacy::noise_for_epsilon(p.target_epsilon, p.sampling_rate, planned, p.delta);
    } catch (const std::exception& e) {
      return field_error("privacy.planned_rounds", e.what());
    }
  }
  if (p.mode == DpMode::kCentral) {
    if (!j.contains("expected_participants"))
      return field_error("privacy.expected_participants", "required in central mode: the fixed, public denominator of the noisy sums");
    POCKETLLM_RETURN_IF_ERROR(number("expected_participants", 1.0, 1e9, &p.denominator));
  }
  if (policy.aggregation.strategy != Strategy::kWeightedMean)
    return field_error("strategy", std::string(strategy_name(policy.aggregation.strategy)) +
                                       " cannot be combined with differential privacy: the noise is calibrated to the L2 "
                                       "sensitivity C of a sum, which a median or a trimmed mean does not have (use weighted_mean)");
  if (policy.aggregation.clip > 0) return field_error("clip", "a per-scalar clip does not apply to a private task: privacy.clip_norm bounds each device");
  if (privacy_status(p, privacy::RoundAccountant(p.sampling_rate, p.noise_multiplier), 0).exhausted)
    return field_error("privacy", "not even one round fits in epsilon " + std::to_string(p.target_epsilon) + " at delta " +
                                      std::to_string(p.delta) + " with noise multiplier " + std::to_string(p.noise_multiplier) +
                                      " and sampling rate " + std::to_string(p.sampling_rate));
  *out = p;
  return Status::ok();
}

}  // namespace

bool valid_task_id(const std::string& id) {
  // A letter or digit first: never "." or "..", which a path or a file name would take for a directory.
  if (id.empty() || id.size() > 64 || !std::isalnum(static_cast<unsigned char>(id[0]))) return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) return false;
  return true;
}

Result<TaskSpec> parse_task_spec(const json& j) {
  if (!j.is_object()) return invalid_argument("task: expected a JSON object");
  static const char* kKnown[] = {"id", "base_model_id", "trainable", "dist", "eps", "lr", "batch_size", "device",
                                 "base_weights", "tau", "round_seconds", "goal_submissions", "min_submissions",
                                 "max_extensions", "strategy", "trim_fraction", "clip", "max_staleness", "seed_key",
                                 "clip_scale", "max_examples", "max_coeff", "max_per_token", "privacy", "secagg", "seed_groups"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool known = false;
    for (const char* k : kKnown) known = known || it.key() == k;
    if (!known) return field_error(it.key(), "unknown field");
  }
  TaskSpec t;
  POCKETLLM_RETURN_IF_ERROR(get_string(j, "id", &t.id));
  if (!valid_task_id(t.id)) return field_error("id", "required, 1-64 characters of [A-Za-z0-9_.-], starting with a letter or digit");
  POCKETLLM_RETURN_IF_ERROR(get_string(j, "base_model_id", &t.base_model_id));
  if (!is_hex64(t.base_model_id)) return field_error("base_model_id", "required, 64 lower-case hex digits (pocketllm info prints it)");
  POCKETLLM_RETURN_IF_ERROR(get_string(j, "trainable", &t.trainable));
  if (t.trainable.empty() || t.trainable.size() > 4096) return field_error("trainable", "must be 1-4096 characters");
  std::string dist = "rademacher";
  POCKETLLM_RETURN_IF_ERROR(get_string(j, "dist", &dist));
  if (!parse_distribution(dist, &t.dist)) return field_error("dist", "must be rademacher or gaussian");
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "eps", 1e-8, 1.0, &t.eps));
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "lr", 0.0, 10.0, &t.lr));
  POCKETLLM_RETURN_IF_ERROR(get_number<uint32_t>(j, "batch_size", 1, 65536, &t.batch_size));
  if (j.contains("device")) {
    if (!j["device"].is_object()) return field_error("device", "must be an object");
    if (j["device"].dump().size() > 16384) return field_error("device", "is larger than 16 KiB");
    t.device = j["device"];
  } else {
    t.device = json::object();
  }
  POCKETLLM_RETURN_IF_ERROR(get_string(j, "base_weights", &t.base_weights));
  if (j.contains("seed_key")) {
    std::string key;
    POCKETLLM_RETURN_IF_ERROR(get_string(j, "seed_key", &key));
    if (!seed_from_hex(key, &t.seed_key)) return field_error("seed_key", "must be 16 hex digits");
    t.has_seed_key = true;
  }
  RoundPolicy& p = t.policy;
  POCKETLLM_RETURN_IF_ERROR(get_number<uint32_t>(j, "tau", 1, 256, &p.tau));
  POCKETLLM_RETURN_IF_ERROR(get_number<uint32_t>(j, "seed_groups", 1, protocol::kMaxSeedGroups, &p.seed_groups));
  if (size_t{p.seed_groups} * p.tau > protocol::kMaxRoundSeeds)
    return field_error("seed_groups", "seed_groups x tau must be at most 4096 (the seeds a round publishes)");
  double seconds = 60;
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "round_seconds", 0.05, 7.0 * 86400, &seconds));
  p.duration_ms = static_cast<int64_t>(std::llround(seconds * 1000));
  POCKETLLM_RETURN_IF_ERROR(get_number<size_t>(j, "goal_submissions", 0, 1000000, &p.goal_submissions));
  POCKETLLM_RETURN_IF_ERROR(get_number<size_t>(j, "min_submissions", 1, 1000000, &p.min_submissions));
  POCKETLLM_RETURN_IF_ERROR(get_number<uint32_t>(j, "max_extensions", 0, 1000, &p.max_extensions));
  std::string strategy = "weighted_mean";
  POCKETLLM_RETURN_IF_ERROR(get_string(j, "strategy", &strategy));
  if (!parse_strategy(strategy, &p.aggregation.strategy)) return field_error("strategy", "must be weighted_mean, median or trimmed_mean");
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "trim_fraction", 0.0, 0.49, &p.aggregation.trim_fraction));
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "clip", 0.0f, 1e30f, &p.aggregation.clip));
  POCKETLLM_RETURN_IF_ERROR(get_number<uint64_t>(j, "max_staleness", 0, 1u << 30, &p.max_staleness));
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "clip_scale", 1.0, 1000.0, &p.aggregation.clip_scale));
  // An honest device weighs in with tau x batch_size examples; more is never believed.
  p.aggregation.max_examples = static_cast<uint64_t>(p.tau) * t.batch_size;
  POCKETLLM_RETURN_IF_ERROR(get_number<uint64_t>(j, "max_examples", 1, uint64_t{1} << 40, &p.aggregation.max_examples));
  POCKETLLM_RETURN_IF_ERROR(get_number(j, "max_coeff", 1e-12f, 1e6f, &p.max_coeff));
  POCKETLLM_RETURN_IF_ERROR(get_number<uint32_t>(j, "max_per_token", 0, 1000000, &t.max_per_token));
  if (p.goal_submissions > 0 && p.goal_submissions < p.min_submissions)
    return field_error("goal_submissions", "must be 0 (off) or at least min_submissions");
  if (j.contains("privacy")) POCKETLLM_RETURN_IF_ERROR(parse_privacy(j["privacy"], p, &p.privacy));
  if (j.contains("secagg")) POCKETLLM_RETURN_IF_ERROR(parse_secagg(j["secagg"], p, &p.secagg));
  if (p.seed_groups > 1) {
    // A group may hold one device: a robust strategy would combine one value; the noise of a private
    // sum and the masks of a secure one are per seed over all devices.
    if (p.aggregation.strategy != Strategy::kWeightedMean)
      return field_error("seed_groups", "needs strategy weighted_mean (a group may hold a single device, so a median or trimmed mean would rest on one value)");
    if (p.privacy.enabled()) return field_error("seed_groups", "cannot be combined with differential privacy yet (the noise is calibrated per seed over all devices)");
    if (p.secagg.enabled()) return field_error("seed_groups", "cannot be combined with secure aggregation yet (the masks cancel in a sum over all devices)");
  }
  return t;
}

protocol::TaskInfo training_spec(const TaskSpec& t) {
  protocol::TaskInfo info;
  info.id = t.id;
  info.base_model_id = t.base_model_id;
  info.trainable = t.trainable;
  info.dist = t.dist;
  info.eps = t.eps;
  info.lr = t.lr;
  info.batch_size = t.batch_size;
  info.tau = t.policy.tau;
  info.device = t.device;
  info.secagg = secagg_mode_name(t.policy.secagg.mode);
  if (t.policy.privacy.enabled()) {
    info.privacy.mode = dp_mode_name(t.policy.privacy.mode);
    info.privacy.clip_norm = t.policy.privacy.clip_norm;
    info.privacy.noise_multiplier = t.policy.privacy.noise_multiplier;
  }
  return info;
}

json task_spec_to_json(const TaskSpec& t) {
  // The training spec devices read is the protocol's; the round policy is the server's.
  json j = json::object();
  protocol::write_training_spec(training_spec(t), &j);
  j["round_seconds"] = static_cast<double>(t.policy.duration_ms) / 1000.0;
  j["goal_submissions"] = t.policy.goal_submissions;
  j["min_submissions"] = t.policy.min_submissions;
  j["max_extensions"] = t.policy.max_extensions;
  j["strategy"] = strategy_name(t.policy.aggregation.strategy);
  j["trim_fraction"] = t.policy.aggregation.trim_fraction;
  j["clip"] = t.policy.aggregation.clip;
  j["max_staleness"] = t.policy.max_staleness;
  j["clip_scale"] = t.policy.aggregation.clip_scale;
  j["max_examples"] = t.policy.aggregation.max_examples;
  j["max_coeff"] = t.policy.max_coeff;
  j["max_per_token"] = t.max_per_token;
  if (t.policy.seed_groups > 1) j["seed_groups"] = t.policy.seed_groups;
  if (!t.base_weights.empty()) j["base_weights"] = t.base_weights;
  const PrivacyPolicy& dp = t.policy.privacy;
  if (dp.enabled()) {
    j["privacy"] = {{"mode", dp_mode_name(dp.mode)}, {"clip_norm", dp.clip_norm}, {"noise_multiplier", dp.noise_multiplier},
                    {"sampling_rate", dp.sampling_rate}, {"target_epsilon", dp.target_epsilon}, {"delta", dp.delta}};
    if (dp.mode == DpMode::kCentral) j["privacy"]["expected_participants"] = dp.denominator;
  }
  if (t.policy.secagg.enabled()) j["secagg"] = secagg_to_json(t.policy.secagg);
  return j;
}

}  // namespace pocketllm::server
