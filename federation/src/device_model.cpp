#include "pocketllm/federation/device_model.h"

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
  const std::string patterns = expand_trainable(task.trainable, loaded.model->config().num_layers);
  auto selected = loaded.model->weights().make_trainable(NamePatterns(patterns));
  if (!selected) return selected.status();
  if (selected.value() == 0) return invalid_argument("task " + task.id + ": trainable '" + task.trainable + "' selects no tensor of this model");
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
