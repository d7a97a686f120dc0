#include "pocketllm/client/federated_device.h"

#include <sys/stat.h>

#include <cmath>
#include <cstring>

#include "pocketllm/common/file_util.h"
#include "pocketllm/common/safetensors.h"

namespace pocketllm {

using nlohmann::json;

Result<LocalRound> run_local_round(LanguageModel& model, Task& task, const std::vector<size_t>& examples, const RoundInfo& round,
                                   uint64_t data_seed, ThreadPool* pool) {
  if (examples.empty()) return invalid_argument("the device has no examples to train on");
  if (round.seeds.empty() || round.round == 0) return invalid_argument("round without seeds");
  TrainOptions o;
  o.batch_size = round.batch_size;
  o.lr = static_cast<float>(round.lr);
  o.eps = static_cast<float>(round.eps);
  o.dist = round.dist;
  o.seeds = round.seeds;
  o.first_step = static_cast<int>((round.round - 1) * round.seeds.size());
  o.steps = o.first_step + static_cast<int>(round.seeds.size());
  o.data_seed = data_seed;
  ZoTrainer trainer(model, task, examples, o, pool);
  LocalRound out;
  double loss_sum = 0;
  int counted = 0;
  for (size_t k = 0; k < round.seeds.size(); ++k) {
    auto rec = trainer.step(o.first_step + static_cast<int>(k));
    if (!rec) return rec.status();
    if (rec->skipped) {
      out.coeffs.push_back(0.0f);
      ++out.skipped;
      continue;
    }
    out.coeffs.push_back(rec->entries[0].coeff);
    loss_sum += 0.5 * (rec->loss_plus[0] + rec->loss_minus[0]);
    ++counted;
    trainer.apply(rec.value());
  }
  out.mean_loss = counted ? loss_sum / counted : NAN;
  out.examples = static_cast<uint64_t>(round.seeds.size()) * static_cast<uint64_t>(round.batch_size);
  return out;
}

Result<std::unique_ptr<FederatedDevice>> FederatedDevice::open(LanguageModel& model, const std::string& model_id, Task& task,
                                                               std::vector<size_t> examples, FederationClient& client,
                                                               FederatedDeviceOptions options, ThreadPool* pool) {
  std::unique_ptr<FederatedDevice> d(new FederatedDevice(model, task, client, pool));
  d->o_ = std::move(options);
  d->examples_ = std::move(examples);
  d->model_id_ = model_id;
  auto info = client.task(d->o_.task_id);
  if (!info) return info.status();
  d->info_ = info.value();
  if (d->info_.base_model_id != model_id)
    return mismatch("task " + d->o_.task_id + " fine-tunes base model " + d->info_.base_model_id.substr(0, 16) + "…, but this model is " +
                    model_id.substr(0, 16) + "…");
  if (model.weights().trainable_tensors().empty()) return invalid_argument("no trainable tensors selected");
  ::mkdir(d->o_.state_dir.c_str(), 0700);
  auto state = read_file(d->o_.state_dir + "/state.json", 1 << 20);
  if (state) {
    json j = json::parse(state.value(), nullptr, false);
    if (j.is_discarded() || !j.contains("version") || !j.contains("task") || !j.contains("base_model_id"))
      return corrupt(d->o_.state_dir + "/state.json is not a device state file");
    if (j["task"] != d->o_.task_id || j["base_model_id"] != model_id)
      return mismatch(d->o_.state_dir + " holds the state of task " + j["task"].get<std::string>() + " on another model or task");
    d->version_ = j["version"].get<uint64_t>();
    d->personal_steps_ = j.value("personal_steps", uint64_t{0});
    POCKETLLM_RETURN_IF_ERROR(d->load_shared());
    auto personal = read_file(d->o_.state_dir + "/personal.log", size_t{1} << 30);
    if (personal) {
      auto log = UpdateLog::from_binary(personal.value());
      if (!log) return log.status();
      d->personal_ = std::move(log.value());
    }
  } else {
    POCKETLLM_RETURN_IF_ERROR(d->save_state());  // version 0: the base weights
  }
  d->apply_personal();
  return d;
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

Status FederatedDevice::sync() {
  auto info = client_.task(o_.task_id);
  if (!info) return info.status();
  const uint64_t target = info->version;
  if (target < version_)
    return mismatch("the server's log of task " + o_.task_id + " (version " + std::to_string(target) + ") is behind this device (" +
                    std::to_string(version_) + "): another server or a reset task");
  if (target == version_) return Status::ok();
  if (!personal_.empty()) POCKETLLM_RETURN_IF_ERROR(load_shared());
  bool done = false;
  if (info->snapshots && target - version_ > o_.snapshot_after) {
    uint64_t v = 0;
    auto bytes = client_.snapshot(o_.task_id, &v);
    if (bytes) {
      auto file = SafetensorsFile::from_bytes(std::move(bytes.value()), "snapshot");
      bool complete = file.is_ok();
      if (complete)
        for (const NamedTensor& t : model_.weights().trainable_tensors()) {
          const TensorInfo* ti = file->find(t.name);
          complete = complete && ti && ti->numel == t.numel;
        }
      if (complete && v >= version_) {
        for (const NamedTensor& t : model_.weights().trainable_tensors())
          POCKETLLM_RETURN_IF_ERROR(file->read_f32(*file->find(t.name), 0, t.numel, t.data));
        version_ = v;
        done = true;
      }
    }
  }
  if (!done || version_ < target) {
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
  Participation p;
  p.round = round.round;
  if (round.state != "open") {
    p.outcome = "closed";
    return p;
  }
  if (version_ != round.base_version) {
    POCKETLLM_RETURN_IF_ERROR(sync());
    if (version_ != round.base_version) {
      p.outcome = "stale";
      return p;
    }
  }
  if (!personal_.empty()) POCKETLLM_RETURN_IF_ERROR(load_shared());  // rounds start from the exact shared weights
  auto local = run_local_round(model_, task_, examples_, round, o_.data_seed, pool_);
  Status restore = load_shared();
  apply_personal();
  if (!local) return local.status();
  POCKETLLM_RETURN_IF_ERROR(restore);
  p.local = local.value();
  auto reply = client_.submit(o_.task_id, round.round, p.local.coeffs, p.local.examples, round.base_version, p.local.mean_loss);
  if (!reply) return reply.status();
  p.submitted = reply->accepted;
  p.outcome = reply->accepted ? (reply->status == 201 ? "accepted" : "duplicate") : reply->error_code;
  return p;
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
