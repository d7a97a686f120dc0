// Building what a federated device trains from the task the server publishes: the base model with the
// task's trainable tensors, the objective from the task's `device` settings, the device's data, and
// the device's data order. The device session (CLI, SDK) and the simulator use these, so all of them
// train the same way.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "pocketllm/client/loader.h"
#include "pocketllm/client/task.h"
#include "pocketllm/protocol/messages.h"

namespace pocketllm {

// Batch size of a device's evaluations (CLI --eval-data, the SDK, the simulator).
constexpr int kDeviceEvalBatch = 32;

// The task's `device` object: {"task": "lm"|"classify", "template", "labels", "preset", "max_length",
// "pack"}; missing keys take the finetune CLI's defaults.
Result<TaskOptions> task_options_from(const nlohmann::json& device);

struct DeviceModel {
  LoadedModel loaded;
  std::string model_id;
  TaskOptions task_options;
};

// Loads the model, checks it is the task's base model, selects the task's trainable tensors.
Result<DeviceModel> load_device_model(const std::string& model_path, const protocol::TaskInfo& task);
// The same for a model already loaded (its id computed by the caller). `loaded` is moved from only on
// success: a refused model stays with the caller.
Result<DeviceModel> prepare_device_model(LoadedModel&& loaded, std::string model_id, const protocol::TaskInfo& task);

// A data file as a task for this model (training or evaluation).
Result<std::unique_ptr<Task>> load_device_task(const DeviceModel& model, const std::string& data_path);

// The data order of a device (docs/protocol.md, "A device's data order"): one rule everywhere.
//   data_seed = SplitMix64(partition_seed XOR SplitMix64(0x646576696365 + shard))
// A simulated device i of a partition seeded S (pocketllm-sim, `federate --shard i/N`) uses (S, i); a
// real device uses (FNV-1a-64 of its device id, 0). Portable: no std::hash.
uint64_t device_data_seed(uint64_t partition_seed, int shard);
uint64_t device_data_seed(const std::string& device_id);

}  // namespace pocketllm
