#include "pocketllm/federation/federated_device.h"
#include "pocketllm/common/json_util.h"

#include <sys/stat.h>

#include <cmath>
#include <cstring>

#include "pocketllm/common/file_util.h"
#include "pocketllm/common/safetensors.h"

namespace pocketllm {

using nlohmann::json;

Result<std::unique_ptr<FederatedDevice>> FederatedDevice::open(LanguageModel& model, const std::string& model_id, Task& task,
                                                               std::vector<size_t> examples, FederationClient& client,
                                                               FederatedDeviceOptions options, ThreadPool* pool,
                                                               const TaskInfo* task_info) {
  std::unique_ptr<FederatedDevice> d(new FederatedDevice(model, task, client, pool));
  d->o_ = std::move(options);
  d->examples_ = std::move(examples);
  d->model_id_ = model_id;
  if (task_info) {
    d->info_ = *task_info;
  } else {
    auto info = client.task(d->o_.task_id);
    if (!info) return info.status();
    d->info_ = info.value();
  }
  d->privacy = d->info_.privacy;  // the task's differential privacy, applied to every submission
  if (d->info_.base_model_id != model_id)
    return mismatch("task " + d->o_.task_id + " fine-tunes base model " + d->info_.base_model_id.substr(0, 16) + "…, but this model is " +
                    model_id.substr(0, 16) + "…");
  if (model.weights().trainable_tensors().empty()) return invalid_argument("no trainable tensors selected");
  ::mkdir(d->o_.state_dir.c_str(), 0700);
  POCKETLLM_RETURN_IF_ERROR(d->restore_state(model_id));
  d->apply_personal();
  return d;
}

// The state directory's version, shared weights and personal log; a new directory starts at version 0.
Status FederatedDevice::restore_state(const std::string& model_id) {
  auto state = read_file(o_.state_dir + "/state.json", 1 << 20);
  if (!state) return save_state();  // version 0: the base weights
  json j = parse_json(state.value());
  if (j.is_discarded() || !j.is_object() || !j.contains("version") || !j["version"].is_number_unsigned() || !j.contains("task") ||
      !j.contains("base_model_id"))
    return corrupt(o_.state_dir + "/state.json is not a device state file");
  if (j["task"] != o_.task_id || j["base_model_id"] != model_id)
    return mismatch(o_.state_dir + " holds the state of task " + j["task"].dump() + " on another model or task");
  version_ = j["version"].get<uint64_t>();
  personal_steps_ = j.value("personal_steps", uint64_t{0});
  POCKETLLM_RETURN_IF_ERROR(load_shared());
  auto personal = read_file(o_.state_dir + "/personal.log", size_t{1} << 30);
  if (personal) {
    auto log = UpdateLog::from_binary(personal.value());
    if (!log) return log.status();
    personal_ = std::move(log.value());
  }
  return Status::ok();
}

Status FederatedDevice::load_shared() {
  auto file = SafetensorsFile::open(o_.state_dir + "/shared.safetensors");
  if (!file) return file.status();
  for (const NamedTensor& t : model_.weights().trainable_tensors()) {
    const TensorInfo* info = file->find(t.name);
    if (!info || info->numel != t.numel) return corrupt(o_.state_dir + "/shared.safetensors: tensor " + t.name + " is missing or has another size");
    POCKETLLM_RETURN_IF_ERROR(file->read_f32(*info, 0, t.numel, t.data));
  }
  return Status::ok();
}

// Without a personal log the weights in memory are the shared ones already.
Status FederatedDevice::before_round() { return personal_.empty() ? Status::ok() : load_shared(); }

Status FederatedDevice::after_round() {
  Status s = load_shared();
  apply_personal();
  return s;
}

Status FederatedDevice::save_state() {
  std::vector<TensorToWrite> tensors;
  for (const NamedTensor& t : model_.weights().trainable_tensors())
    tensors.push_back({t.name, DType::kF32, {static_cast<int64_t>(t.numel)}, t.data});
  POCKETLLM_RETURN_IF_ERROR(write_safetensors(o_.state_dir + "/shared.safetensors", tensors, {{"version", std::to_string(version_)}}));
  return save_meta();
}

Status FederatedDevice::save_meta() {
  const json j = {{"format", "pocketllm.device_state"}, {"task", o_.task_id}, {"base_model_id", model_id_},
                  {"version", version_}, {"personal_steps", personal_steps_}};
  return write_file_atomic(o_.state_dir + "/state.json", j.dump(1) + "\n");
}

void FederatedDevice::apply_personal() {
  if (!personal_.empty()) replay_log(pool_, info_.dist, personal_, model_.weights().trainable_tensors());
}

// A snapshot of the latest trainable tensors when the task offers them and the device is far behind;
// false (no usable snapshot) leaves the weights as they were.
Result<bool> FederatedDevice::try_snapshot(uint64_t target) {
  if (!info_.snapshots || target - version_ <= o_.snapshot_after) return false;
  uint64_t v = 0;
  auto bytes = client_.snapshot(o_.task_id, &v);
  if (!bytes) return false;
  auto file = SafetensorsFile::from_bytes(std::move(bytes.value()), "snapshot");
  if (!file || v < version_) return false;
  for (const NamedTensor& t : model_.weights().trainable_tensors()) {
    const TensorInfo* ti = file->find(t.name);
    if (!ti || ti->numel != t.numel) return false;
  }
  for (const NamedTensor& t : model_.weights().trainable_tensors())
    POCKETLLM_RETURN_IF_ERROR(file->read_f32(*file->find(t.name), 0, t.numel, t.data));
  version_ = v;
  return true;
}

Status FederatedDevice::sync() {
  auto info = client_.task(o_.task_id);
  if (!info) return info.status();
  const uint64_t target = info->version;
  if (target < version_)
    return mismatch("the server's log of task " + o_.task_id + " (version " + std::to_string(target) + ") is behind this device (" +
                    std::to_string(version_) + "): another server or a reset task");
  if (target == version_) return Status::ok();
  if (!personal_.empty()) POCKETLLM_RETURN_IF_ERROR(load_shared());
  auto snapshot = try_snapshot(target);
  if (!snapshot) return snapshot.status();
  if (!snapshot.value() || version_ < target) {
    auto log = client_.log_since(o_.task_id, version_);
    if (!log) return log.status();
    replay_log(pool_, info_.dist, log.value(), model_.weights().trainable_tensors());
    version_ += log->size();
  }
  POCKETLLM_RETURN_IF_ERROR(save_state());
  apply_personal();
  return Status::ok();
}

Result<Participation> FederatedDevice::participate(const RoundInfo& round) {
  auto p = train(round);
  if (!p) return p.status();
  if (round.secagg.is_object()) return submit_secure(client_, o_.task_id, round, std::move(p.value()));
  return submit(client_, o_.task_id, round, std::move(p.value()));
}

Status FederatedDevice::personalize(const TrainOptions& options, int steps) {
  TrainOptions o = options;
  o.seeds.clear();
  o.weight_decay = 0;  // the personal log holds (seed, coeff) entries only
  o.steps = static_cast<int>(personal_steps_) + steps;
  ZoTrainer trainer(model_, task_, examples_, o, pool_);
  for (int i = 0; i < steps; ++i) {
    const int t = static_cast<int>(personal_steps_) + i;
    auto rec = trainer.step(t);
    if (!rec) return rec.status();
    if (rec->skipped) continue;
    for (const auto& e : rec->entries) POCKETLLM_RETURN_IF_ERROR(personal_.append(e));
    trainer.apply(rec.value());
  }
  personal_steps_ += static_cast<uint64_t>(steps);
  POCKETLLM_RETURN_IF_ERROR(write_file_atomic(o_.state_dir + "/personal.log", personal_.to_binary()));
  return save_meta();
}

}  // namespace pocketllm
