// PEFT adapter directories: adapter_config.json + adapter_model.safetensors.
#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <set>

#include "pocketllm/client/lora.h"
#include "pocketllm/client/model.h"
#include "pocketllm/common/file_util.h"
#include "pocketllm/common/safetensors.h"

namespace pocketllm {
namespace {

using nlohmann::json;

const char* peft_task_type(Architecture a) {
  switch (a) {
    case Architecture::kRoberta: return "FEATURE_EXTRACTION";
    default: return "CAUSAL_LM";
  }
}

}  // namespace

Status export_peft_adapter(const LanguageModel& model, const LoraConfig& lora, const std::string& base_model_name,
                           const std::string& out_dir) {
  std::vector<TensorToWrite> tensors;
  for (const auto& w : model.weights().all()) {
    if (w->adapter) {
      tensors.push_back({w->name, DType::kF32, w->shape, w->data});
    } else if (w->trainable) {
      return unsupported("tensor '" + w->name + "' was trained beside the adapters; a PEFT LoRA adapter cannot hold it "
                         "(export the merged model with --format hf or gguf instead)");
    }
  }
  if (tensors.empty() || !lora.enabled()) return invalid_argument("the model has no adapters to export");
  for (const auto& t : tensors) {
    const float* v = static_cast<const float*>(t.data);
    size_t n = 1;
    for (int64_t d : t.shape) n *= static_cast<size_t>(d);
    for (size_t i = 0; i < n; ++i)
      if (!std::isfinite(v[i])) return corrupt("adapter tensor '" + t.name + "' holds a non-finite value; refusing to write it");
  }
  if (::mkdir(out_dir.c_str(), 0755) != 0 && errno != EEXIST) return io_error(out_dir + ": cannot create: " + std::strerror(errno));
  const std::vector<std::string> targets = lora.target_list();
  json target_modules = targets.size() == 1 && targets[0] == "all-linear" ? json("all-linear") : json(targets);
  const ModelConfig& c = model.config();
  json config = {{"peft_type", "LORA"},
                 {"task_type", peft_task_type(c.arch)},
                 {"base_model_name_or_path", base_model_name},
                 {"r", lora.rank},
                 {"lora_alpha", lora.alpha > 0 ? lora.alpha : static_cast<float>(lora.rank)},
                 {"lora_dropout", 0.0},
                 {"target_modules", target_modules},
                 {"fan_in_fan_out", c.arch == Architecture::kGpt2},
                 {"bias", "none"},
                 {"use_rslora", false},
                 {"use_dora", false},
                 {"modules_to_save", nullptr},
                 {"init_lora_weights", true},
                 {"inference_mode", true},
                 {"rank_pattern", json::object()},
                 {"alpha_pattern", json::object()},
                 {"layers_to_transform", nullptr},
                 {"layers_pattern", nullptr},
                 {"revision", nullptr}};
  POCKETLLM_RETURN_IF_ERROR(write_safetensors(out_dir + "/adapter_model.safetensors", tensors, {{"format", "pt"}}));
  return write_file_atomic(out_dir + "/adapter_config.json", config.dump(2) + "\n");
}

// long: every refusal of a PEFT config we cannot reproduce exactly, then the tensors one by one.
Result<LoraConfig> load_peft_adapter(LanguageModel& model, const std::string& dir) {
  const std::string cfg_path = dir + "/adapter_config.json";
  auto text = read_file(cfg_path, size_t{1} << 20);
  if (!text) return text.status();
  json j;
  try {
    j = json::parse(text.value());
  } catch (const json::exception& e) {
    return corrupt(cfg_path + ": not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object()) return corrupt(cfg_path + ": not a JSON object");
  LoraConfig lora;
  try {
    if (j.value("peft_type", std::string()) != "LORA")
      return unsupported(cfg_path + ": peft_type " + j.value("peft_type", json("missing")).dump() + " (only LORA adapters are read)");
    if (!j.contains("r") || !j["r"].is_number_integer() || j["r"].get<int64_t>() < 1 || j["r"].get<int64_t>() > 1024)
      return corrupt(cfg_path + ": r must be an integer in 1..1024");
    lora.rank = static_cast<int>(j["r"].get<int64_t>());
    const json alpha = j.value("lora_alpha", json(lora.rank));
    if (!alpha.is_number() || !std::isfinite(alpha.get<double>()) || alpha.get<double>() <= 0 || alpha.get<double>() > 1e6)
      return corrupt(cfg_path + ": lora_alpha must be a positive number");
    lora.alpha = alpha.get<float>();
    const json bias = j.value("bias", json("none"));
    if (bias != "none") return unsupported(cfg_path + ": bias " + bias.dump() + " (only \"none\" is read)");
    for (const char* flag : {"use_dora", "use_rslora"})
      if (j.contains(flag) && j[flag].is_boolean() && j[flag].get<bool>()) return unsupported(cfg_path + ": " + flag + " is not supported");
    for (const char* pattern : {"rank_pattern", "alpha_pattern"})
      if (j.contains(pattern) && !j[pattern].is_null() && !j[pattern].empty())
        return unsupported(cfg_path + ": " + pattern + " (per-layer ranks or alphas) is not supported");
    for (const char* field : {"layers_to_transform", "modules_to_save"})
      if (j.contains(field) && !j[field].is_null()) return unsupported(cfg_path + ": " + field + " is not supported");
    const json& tm = j.contains("target_modules") ? j["target_modules"] : json();
    if (tm.is_array() && !tm.empty()) {
      std::string joined;
      for (const json& t : tm) {
        if (!t.is_string() || t.get<std::string>().empty() || t.get<std::string>().find(',') != std::string::npos)
          return corrupt(cfg_path + ": target_modules entries must be module names");
        joined += (joined.empty() ? "" : ",") + t.get<std::string>();
      }
      lora.targets = joined;
    } else if (tm == "all-linear") {
      lora.targets = "all-linear";
    } else {
      return unsupported(cfg_path + ": target_modules must be a list of module names or \"all-linear\" (regular expressions are not read)");
    }
  } catch (const json::exception& e) {
    return corrupt(cfg_path + ": " + e.what());
  }
  auto file = SafetensorsFile::open(dir + "/adapter_model.safetensors");
  if (!file) return file.status();
  auto added = add_lora_adapters(model.weights(), model.config(), lora);
  if (!added) return Status(added.status().code(), dir + ": " + added.status().message());
  std::set<std::string> expected;
  for (const auto& w : model.weights().all())
    if (w->adapter) expected.insert(w->name);
  for (const TensorInfo& t : file->tensors())
    if (!expected.count(t.name))
      return mismatch(dir + ": tensor '" + t.name + "' is not an adapter of this model with target_modules " + lora.targets);
  for (const std::string& name : expected) {
    const TensorInfo* t = file->find(name);
    if (t == nullptr) return mismatch(dir + ": adapter tensor '" + name + "' is missing");
    Weight* w = model.weights().find_mutable(name);
    if (t->shape != w->shape)
      return mismatch(dir + ": '" + name + "' has shape [" + std::to_string(t->shape.empty() ? 0 : t->shape[0]) + ", …], expected [" +
                      std::to_string(w->shape[0]) + ", " + std::to_string(w->shape[1]) + "] for this base model");
    if (t->dtype != DType::kF32 && t->dtype != DType::kF16 && t->dtype != DType::kBF16)
      return unsupported(dir + ": '" + name + "' has dtype " + dtype_name(t->dtype) + " (F32, F16 or BF16 expected)");
    POCKETLLM_RETURN_IF_ERROR(file->read_f32(*t, 0, w->numel(), w->mutable_f32));
    for (size_t i = 0; i < w->numel(); ++i)
      if (!std::isfinite(w->mutable_f32[i])) return corrupt(dir + ": '" + name + "' holds a non-finite value");
  }
  return lora;
}

}  // namespace pocketllm
