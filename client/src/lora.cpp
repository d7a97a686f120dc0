#include "pocketllm/client/lora.h"

#include <algorithm>
#include <cmath>

#include "pocketllm/client/model.h"
#include "pocketllm/client/task.h"
#include "pocketllm/common/perturbation.h"
#include "pocketllm/common/update_log.h"
#include "pocketllm/common/split.h"

namespace pocketllm {
namespace {

constexpr const char* kPrefix = "base_model.model.";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Whether `name` lies inside a numbered transformer block (llama/OPT "layers.N.", RoBERTa "layer.N.",
// GPT-2 "h.N.").
bool inside_block(const std::string& name) {
  for (const char* marker : {".layers.", ".layer.", ".h."}) {
    for (size_t at = name.find(marker); at != std::string::npos; at = name.find(marker, at + 1)) {
      const size_t digit = at + std::char_traits<char>::length(marker);
      if (digit < name.size() && name[digit] >= '0' && name[digit] <= '9') return true;
    }
    if (name.rfind(marker + 1, 0) == 0) return true;  // starts with "layers." etc.
  }
  return false;
}

}  // namespace

std::vector<std::string> LoraConfig::target_list() const {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= targets.size()) {
    size_t comma = targets.find(',', start);
    if (comma == std::string::npos) comma = targets.size();
    std::string t = targets.substr(start, comma - start);
    while (!t.empty() && t.front() == ' ') t.erase(t.begin());
    while (!t.empty() && t.back() == ' ') t.pop_back();
    if (!t.empty()) out.push_back(t);
    start = comma + 1;
  }
  return out;
}

nlohmann::json LoraConfig::to_json() const {
  return {{"rank", rank}, {"alpha", alpha > 0 ? alpha : static_cast<float>(rank)}, {"targets", targets}, {"init_seed", seed_to_hex(init_seed)}};
}

Status LoraConfig::validate() const {
  if (rank < 1 || rank > 1024) return invalid_argument("adapter rank must be 1..1024, not " + std::to_string(rank));
  if (!std::isfinite(alpha) || alpha < 0) return invalid_argument("adapter alpha must be a finite number >= 0");
  if (target_list().empty()) return invalid_argument("adapter targets are empty (e.g. q_proj,v_proj or all-linear)");
  return Status::ok();
}

Result<LoraConfig> LoraConfig::from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) return invalid_argument(where + ": adapter must be an object");
  LoraConfig c;
  try {
    if (!j.contains("rank") || !j["rank"].is_number_integer()) return invalid_argument(where + ": adapter.rank must be an integer");
    const int64_t r = j["rank"].get<int64_t>();
    if (r < 1 || r > 1024) return invalid_argument(where + ": adapter.rank must be 1..1024");
    c.rank = static_cast<int>(r);
    if (j.contains("alpha")) {
      if (!j["alpha"].is_number()) return invalid_argument(where + ": adapter.alpha must be a number");
      const double a = j["alpha"].get<double>();
      if (!std::isfinite(a) || a < 0 || a > 1e6) return invalid_argument(where + ": adapter.alpha must be in [0, 1e6]");
      c.alpha = static_cast<float>(a);
    }
    if (j.contains("targets")) {
      if (!j["targets"].is_string()) return invalid_argument(where + ": adapter.targets must be a string");
      c.targets = j["targets"].get<std::string>();
    }
    if (j.contains("init_seed")) {
      if (!j["init_seed"].is_string() || !seed_from_hex(j["init_seed"].get<std::string>(), &c.init_seed))
        return invalid_argument(where + ": adapter.init_seed must be 16 hex digits");
    }
    for (const auto& [key, value] : j.items()) {
      (void)value;
      if (key != "rank" && key != "alpha" && key != "targets" && key != "init_seed")
        return invalid_argument(where + ": unknown adapter field '" + key + "'");
    }
  } catch (const nlohmann::json::exception& e) {
    return invalid_argument(where + ": adapter: " + e.what());
  }
  if (Status s = c.validate(); !s) return invalid_argument(where + ": " + s.message());
  return c;
}

std::string lora_a_name(const std::string& module) { return kPrefix + module + ".lora_A.weight"; }
std::string lora_b_name(const std::string& module) { return kPrefix + module + ".lora_B.weight"; }
bool is_lora_tensor_name(const std::string& name) {
  return name.rfind(kPrefix, 0) == 0 && (ends_with(name, ".lora_A.weight") || ends_with(name, ".lora_B.weight"));
}

std::vector<std::string> lora_target_modules(const WeightStore& weights, const LoraConfig& config) {
  const std::vector<std::string> targets = config.target_list();
  const bool all = targets.size() == 1 && targets[0] == "all-linear";
  std::vector<std::string> out;
  for (const auto& w : weights.all()) {
    if (w->adapter || w->shape.size() != 2 || !ends_with(w->name, ".weight") || !inside_block(w->name)) continue;
    const std::string module = w->name.substr(0, w->name.size() - 7);
    bool hit = all;
    for (const std::string& t : targets) hit = hit || module == t || ends_with(module, "." + t);
    if (hit) out.push_back(module);
  }
  return out;
}

Result<size_t> add_lora_adapters(WeightStore& weights, const ModelConfig& config, const LoraConfig& lora) {
  POCKETLLM_RETURN_IF_ERROR(lora.validate());
  for (const auto& w : weights.all())
    if (w->adapter) return invalid_argument("the model already has adapters");
  const std::vector<std::string> modules = lora_target_modules(weights, lora);
  if (modules.empty())
    return invalid_argument("adapter targets '" + lora.targets + "' match no linear layer of this " + architecture_name(config.arch) +
                            " model (e.g. q_proj,v_proj for llama/OPT, query,value for RoBERTa, c_attn for GPT-2, or all-linear)");
  const bool in_out = config.arch == Architecture::kGpt2;  // Conv1D: stored [in, out]
  const size_t r = static_cast<size_t>(lora.rank);
  for (const std::string& module : modules) {
    Weight* base = weights.find_mutable(module + ".weight");
    const size_t out = static_cast<size_t>(in_out ? base->shape[1] : base->shape[0]);
    const size_t in = static_cast<size_t>(in_out ? base->shape[0] : base->shape[1]);
    const std::string a_name = lora_a_name(module), b_name = lora_b_name(module);
    std::vector<float> a(r * in, 0.0f);
    add_scaled_z(Distribution::kGaussian, lora.init_seed, tensor_tag(a_name), 0, a.size(), 1.0f / std::sqrt(static_cast<float>(in)),
                 a.data(), a.data());
    Weight& wa = weights.add_owned_f32(a_name, {static_cast<int64_t>(r), static_cast<int64_t>(in)}, std::move(a));
    Weight& wb = weights.add_owned_f32(b_name, {static_cast<int64_t>(out), static_cast<int64_t>(r)}, std::vector<float>(out * r, 0.0f));
    for (Weight* w : {&wa, &wb}) {
      w->adapter = true;
      w->trainable = true;
      w->mutable_f32 = static_cast<float*>(const_cast<void*>(w->data));
    }
    base->lora_a = &wa;
    base->lora_b = &wb;
    base->lora_scale = lora.scale();
  }
  return modules.size();
}

std::vector<float> merged_weight(const Weight& w, bool in_out) {
  const size_t n = w.numel();
  std::vector<float> m(n);
  const float* base = weight_rows(w, 0, w.rows(), Perturbation{}, m.data());
  if (base != m.data()) std::copy_n(base, n, m.data());
  if (w.lora_a == nullptr) return m;
  const Weight& A = *w.lora_a;
  const Weight& B = *w.lora_b;
  const size_t r = A.rows(), in = A.cols(), out = B.rows();
  const float* a = static_cast<const float*>(A.data);
  const float* b = static_cast<const float*>(B.data);
  for (size_t o = 0; o < out; ++o)
    for (size_t i = 0; i < in; ++i) {
      float acc = 0;
      for (size_t k = 0; k < r; ++k) acc += b[o * r + k] * a[k * in + i];
      m[in_out ? i * out + o : o * in + i] += w.lora_scale * acc;
    }
  return m;
}

Status apply_step_scales(LanguageModel& model, const std::string& spec) {
  for (const std::string& item : split_list(spec, ',')) {
    const size_t eq = item.rfind('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size())
      return invalid_argument("step scale '" + item + "' is not PATTERN=SCALE");
    const std::string pattern = item.substr(0, eq), value = item.substr(eq + 1);
    char* end = nullptr;
    const double s = std::strtod(value.c_str(), &end);
    if (end != value.c_str() + value.size() || !std::isfinite(s) || s <= 0 || s > 1000)
      return invalid_argument("step scale '" + item + "': the scale must be a number in (0, 1000]");
    const NamePatterns names(expand_trainable(pattern, model.config().num_layers));
    size_t hit = 0;
    for (const auto& w : model.weights().all())
      if (w->trainable && names.matches(w->name)) {
        w->z_scale = static_cast<float>(s);
        ++hit;
      }
    if (hit == 0) return invalid_argument("step scale '" + item + "' selects no trainable tensor");
  }
  return Status::ok();
}

Result<size_t> select_trainable(LanguageModel& model, const std::string& trainable, const LoraConfig& lora) {
  if (lora.enabled()) {
    auto added = add_lora_adapters(model.weights(), model.config(), lora);
    if (!added) return added.status();
  }
  if (!trainable.empty() && trainable != "none") {
    auto selected = model.weights().make_trainable(NamePatterns(expand_trainable(trainable, model.config().num_layers)));
    if (!selected) return selected.status();
  }
  const size_t count = model.weights().trainable().size();
  if (count == 0) return invalid_argument("the trainable set is empty: give trainable patterns or an adapter");
  return count;
}

}  // namespace pocketllm
