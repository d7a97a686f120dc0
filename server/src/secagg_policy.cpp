#include "pocketllm/server/secagg_policy.h"

#include <cmath>

#include "pocketllm/common/seeds.h"
#include "pocketllm/server/rounds.h"
#include "range_text.h"

namespace pocketllm::server {

using nlohmann::json;

const char* secagg_mode_name(SecAggMode m) {
  switch (m) {
    case SecAggMode::kOff: return "off";
    case SecAggMode::kMasked: return "masked";
    case SecAggMode::kPlain: return "plain";
  }
  return "?";
}

namespace {

Status secagg_field_error(const std::string& name, const std::string& what) { return invalid_argument("task.secagg." + name + ": " + what); }

Status number(const json& j, const char* name, double lo, double hi, bool integral, double* out) {
  if (!j.contains(name)) return Status::ok();
  if (!j[name].is_number()) return secagg_field_error(name, "must be a number");
  const double v = j[name].get<double>();
  if (!std::isfinite(v) || v < lo || v > hi) return secagg_field_error(name, "must be in " + range_text(static_cast<double>(lo), static_cast<double>(hi)));
  if (integral && v != std::floor(v)) return secagg_field_error(name, "must be an integer");
  *out = v;
  return Status::ok();
}

// What cannot work under secure aggregation, refused at creation with the reason.
Status check_composes(const RoundPolicy& policy) {
  if (policy.aggregation.strategy != Strategy::kWeightedMean)
    return secagg_field_error("mode", std::string(strategy_name(policy.aggregation.strategy)) +
                                   " cannot be combined with secure aggregation: the server sees only the sum of a round's "
                                   "inputs, and a median or trimmed mean needs each device's scalars (use weighted_mean)");
  if (policy.aggregation.clip > 0)
    return secagg_field_error("bound", "the per-scalar clip of the plain aggregation does not apply; secagg.bound clips on the device");
  if (policy.max_staleness > 0)
    return secagg_field_error("mode", "stale submissions cannot be down-weighted inside a secure sum: max_staleness must be 0");
  if (policy.min_submissions < 2)
    return secagg_field_error("mode", "min_submissions must be at least 2 (the sum of one device is that device's input)");
  if (policy.privacy.enabled() && policy.privacy.mode != DpMode::kCentral)
    return secagg_field_error("mode", "with secure aggregation the devices add the noise in shares of the central amount: use privacy.mode "
                               "central (docs/secagg.md §2.3)");
  return Status::ok();
}

}  // namespace

Status parse_secagg(const json& j, const RoundPolicy& policy, SecAggPolicy* out) {
  if (!j.is_object()) return invalid_argument("task.secagg: must be an object");
  for (const auto& [k, v] : j.items())
    if (k != "mode" && k != "bound" && k != "scale_bits" && k != "degree" && k != "share_threshold" && k != "phase_seconds" &&
        k != "max_participants")
      return secagg_field_error(k, "unknown field");
  SecAggPolicy p;
  if (!j.contains("mode") || !j["mode"].is_string()) return secagg_field_error("mode", "required: masked or plain");
  const std::string mode = j["mode"].get<std::string>();
  if (mode == "masked") p.mode = SecAggMode::kMasked;
  else if (mode == "plain") p.mode = SecAggMode::kPlain;
  else return secagg_field_error("mode", "must be masked or plain");
  POCKETLLM_RETURN_IF_ERROR(check_composes(policy));
  if (p.mode == SecAggMode::kPlain && policy.privacy.enabled())
    return secagg_field_error("mode", "plain is the unmasked check of the encoding, without the devices' noise: not for a private task");
  double v = 0;
  if (policy.privacy.enabled()) {
    p.bound = policy.privacy.clip_norm;
    double given = p.bound;  // (a stored spec writes it back)
    POCKETLLM_RETURN_IF_ERROR(number(j, "bound", 1e-12, 1e6, false, &given));
    if (given != p.bound) return secagg_field_error("bound", "a private task's bound is its privacy.clip_norm");
    p.scale_bits = 30;
  } else {
    if (!j.contains("bound")) return secagg_field_error("bound", "required: the largest |scalar| a device submits (it clips to it)");
    POCKETLLM_RETURN_IF_ERROR(number(j, "bound", 1e-12, 1e6, false, &p.bound));
  }
  v = p.scale_bits;
  POCKETLLM_RETURN_IF_ERROR(number(j, "scale_bits", 8, 52, true, &v));
  p.scale_bits = static_cast<int>(v);
  v = 0;
  POCKETLLM_RETURN_IF_ERROR(number(j, "degree", 0, 254, true, &v));
  p.degree = static_cast<uint32_t>(v);
  v = 0;
  POCKETLLM_RETURN_IF_ERROR(number(j, "share_threshold", 0, 254, true, &v));
  p.share_threshold = static_cast<uint32_t>(v);
  v = 30;
  POCKETLLM_RETURN_IF_ERROR(number(j, "phase_seconds", 0.05, 3600, false, &v));
  p.phase_ms = static_cast<int64_t>(std::llround(v * 1000));
  v = p.max_participants;
  POCKETLLM_RETURN_IF_ERROR(number(j, "max_participants", 2, 1 << 20, true, &v));
  p.max_participants = static_cast<uint32_t>(v);
  // The largest round must fit the 64-bit sum, and its graph the byte-sized share points.
  RoundPolicy with = policy;
  with.secagg = p;
  const secagg::RoundConfig c = secagg_round_config(with, 0, 1);
  if (p.mode == SecAggMode::kMasked) {
    auto shape = secagg::round_shape(c, p.max_participants);
    if (!shape) return secagg_field_error("max_participants", shape.status().message());
    if (p.share_threshold > 0 && p.degree == 0)
      return secagg_field_error("share_threshold", "give degree too: the default degree depends on the round's size");
  } else {
    POCKETLLM_RETURN_IF_ERROR(secagg::check_capacity(c.input, p.max_participants));
  }
  *out = p;
  return Status::ok();
}

json secagg_to_json(const SecAggPolicy& p) {
  json j = {{"mode", secagg_mode_name(p.mode)}, {"scale_bits", p.scale_bits}, {"degree", p.degree},
            {"share_threshold", p.share_threshold}, {"phase_seconds", static_cast<double>(p.phase_ms) / 1000.0},
            {"max_participants", p.max_participants}};
  j["bound"] = p.bound;
  return j;
}

secagg::RoundConfig secagg_round_config(const RoundPolicy& policy, uint64_t seed_key, uint64_t round) {
  secagg::RoundConfig c;
  c.round_id = splitmix64(seed_key ^ splitmix64(round ^ 0x5ecacc0000000000ull));
  c.graph_seed = splitmix64(c.round_id ^ 0x67726170680000ull);  // "graph"
  c.min_survivors = static_cast<uint32_t>(std::max<size_t>(2, policy.min_submissions));
  c.degree = policy.secagg.degree;
  c.share_threshold = policy.secagg.share_threshold;
  c.input.tau = policy.tau;
  c.input.scale_bits = policy.secagg.scale_bits;
  c.input.bound = policy.secagg.bound;
  c.input.max_weight = std::max<uint64_t>(1, policy.aggregation.max_examples);
  if (policy.privacy.enabled()) {
    c.input.uniform_weights = true;
    const double sd = policy.privacy.noise_multiplier * policy.privacy.clip_norm * std::ldexp(1.0, c.input.scale_bits);
    c.input.noise_variance = sd * sd / c.min_survivors;
  }
  return c;
}

}  // namespace pocketllm::server
