// Building what a federated device trains from the task the server publishes: the base model with the
// task's trainable tensors, the objective from the task's `device` settings, and the device's data.
// The pocketllm CLI (`federate`), the simulator and the SDK share it, so all of them train the same way.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "pocketllm/client/federation_client.h"
#include "pocketllm/client/loader.h"
#include "pocketllm/client/task.h"

namespace pocketllm {

// The task's `device` object: {"task": "lm"|"classify", "template", "labels", "preset", "max_length",
// "pack"}; missing keys take the finetune CLI's defaults.
Result<TaskOptions> task_options_from(const nlohmann::json& device);

struct DeviceModel {
  LoadedModel loaded;
  std::string model_id;
  TaskOptions task_options;
};

// Loads the model, checks it is the task's base model, selects the task's trainable tensors.
Result<DeviceModel> load_device_model(const std::string& model_path, const TaskInfo& task);
// The same for a model already loaded (its id computed by the caller).
Result<DeviceModel> prepare_device_model(LoadedModel loaded, std::string model_id, const TaskInfo& task);

// A data file as a task for this model (training or evaluation).
Result<std::unique_ptr<Task>> load_device_task(const DeviceModel& model, const std::string& data_path);

// The data order seed of simulated device i: the same in the simulator and in a separate process.
uint64_t device_data_seed(uint64_t partition_seed, int device);

}  // namespace pocketllm
