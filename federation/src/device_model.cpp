#include "pocketllm/federation/device_model.h"

#include "pocketllm/client/lora.h"
#include "pocketllm/common/name_pattern.h"
#include "pocketllm/common/perturbation.h"
#include "pocketllm/common/seeds.h"

namespace pocketllm {

Result<TaskOptions> task_options_from(const nlohmann::json& d) {
  TaskOptions o;
  if (!d.is_object()) return invalid_argument("task.device must be an object");
  try {
    o.kind = d.value("task", std::string("lm"));
    if (o.kind != "lm" && o.kind != "classify") return invalid_argument("task.device.task must be lm or classify");
    std::string labels = d.value("labels", std::string());
    o.prompt_template = d.value("template", o.prompt_template);
    if (d.contains("preset")) {
      std::string tmpl, preset_labels;
      if (!classification_preset(d["preset"].get<std::string>(), &tmpl, &preset_labels)) return invalid_argument("task.device.preset is unknown");
      o.prompt_template = d.value("template", tmpl);
      if (labels.empty()) labels = preset_labels;
    }
    o.max_length = d.value("max_length", o.max_length);
    o.pack = d.value("pack", false);
    if (o.max_length < 2) return invalid_argument("task.device.max_length must be >= 2");
    if (o.kind == "classify") {
      auto lw = parse_label_words(labels);
      if (!lw) return invalid_argument("task.device.labels: " + lw.status().message());
      o.label_words = lw.value();
    }
  } catch (const nlohmann::json::exception& e) {
    return invalid_argument(std::string("task.device: ") + e.what());
  }
  return o;
}

Result<DeviceModel> load_device_model(const std::string& model_path, const protocol::TaskInfo& task) {
  LoadOptions lo;
  lo.require_tokenizer = true;
  auto loaded = load_model(model_path, lo);
  if (!loaded) return loaded.status();
  std::string id = loaded->model->weights().compute_model_id();
  return prepare_device_model(std::move(loaded.value()), std::move(id), task);
}

Result<DeviceModel> prepare_device_model(LoadedModel&& loaded, std::string model_id, const protocol::TaskInfo& task) {
  auto options = task_options_from(task.device);
  if (!options) return options.status();
  if (!loaded.tokenizer) return invalid_argument(loaded.path + ": no tokenizer found beside the model");
  DeviceModel m;
  m.model_id = std::move(model_id);
  if (m.model_id != task.base_model_id)
    return mismatch("task " + task.id + " fine-tunes base model " + task.base_model_id.substr(0, 16) + "…, but " + loaded.path + " is " +
                    m.model_id.substr(0, 16) + "…");
  LoraConfig lora;
  if (task.device.is_object() && task.device.contains("adapter")) {
    auto parsed = LoraConfig::from_json(task.device["adapter"], "task " + task.id + " device");
    if (!parsed) return parsed.status();
    lora = parsed.value();
  }
  auto selected = select_trainable(*loaded.model, task.trainable, lora);
  if (!selected) return invalid_argument("task " + task.id + ": " + selected.status().message());
  m.loaded = std::move(loaded);
  m.task_options = options.value();
  return m;
}

Result<std::unique_ptr<Task>> load_device_task(const DeviceModel& m, const std::string& data_path) {
  DatasetOptions dopt;
  dopt.need_label = m.task_options.kind == "classify";
  auto data = load_dataset(data_path, dopt);
  if (!data) return data.status();
  return make_task(data.value(), *m.loaded.tokenizer, *m.loaded.model, m.task_options);
}

uint64_t device_data_seed(uint64_t partition_seed, int shard) {
  return splitmix64(partition_seed ^ splitmix64(0x646576696365ull + static_cast<uint64_t>(shard)));  // "device"
}

uint64_t device_data_seed(const std::string& device_id) { return device_data_seed(tensor_tag(device_id), 0); }

}  // namespace pocketllm
