#include "pocketllm/federation/device_session.h"

#include <chrono>
#include <filesystem>
#include <thread>

#include "pocketllm/client/memory_estimate.h"

namespace pocketllm {
namespace {

Status check_budget(const DeviceModel& m, const TaskInfo& info, uint64_t budget) {
  if (budget == 0) return Status::ok();
  const auto e = estimate_training_memory(*m.loaded.model, NamePatterns(""), static_cast<int>(info.batch_size), m.task_options.max_length);
  if (e.total() <= budget) return Status::ok();
  return resource_exhausted("task " + info.id + "'s rounds need " + e.describe() + ", over the memory budget of " +
                                                    std::to_string(budget) + " bytes");
}

Status make_state_dir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return io_error(dir + ": cannot create: " + ec.message());
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
  return Status::ok();
}

}  // namespace

Result<std::unique_ptr<DeviceSession>> DeviceSession::open(DeviceConfig c) {
  if (!c.transport) return invalid_argument("a device needs a transport to the server");
  for (const std::string* f : {&c.task_id, &c.model_path, &c.data_path, &c.state_dir})
    if (f->empty()) return invalid_argument("task id, model, data and state directory are required");
  std::unique_ptr<DeviceSession> s(new DeviceSession());
  s->task_id_ = c.task_id;
  POCKETLLM_RETURN_IF_ERROR(make_state_dir(c.state_dir));
  auto client = FederationClient::open(std::move(c.transport), c.server_url, c.credentials_file, c.enrolment_token, c.retry);
  if (!client) return client.status();
  s->client_ = std::move(client.value());
  auto info = s->client_->task(c.task_id);
  if (!info) return info.status();
  auto m = load_device_model(c.model_path, info.value());
  if (!m) return m.status();
  s->model_ = std::move(m.value());
  POCKETLLM_RETURN_IF_ERROR(check_budget(s->model_, info.value(), c.memory_budget_bytes));
  auto t = load_device_task(s->model_, c.data_path);
  if (!t) return t.status();
  s->task_ = std::move(t.value());
  std::vector<size_t> mine(s->task_->size());
  for (size_t i = 0; i < mine.size(); ++i) mine[i] = i;
  if (c.select_examples) {
    auto picked = c.select_examples(*s->task_);
    if (!picked) return picked.status();
    mine = std::move(picked.value());
  }
  s->examples_ = mine.size();
  s->pool_ = std::make_unique<ThreadPool>(c.threads);
  FederatedDeviceOptions o;
  o.task_id = c.task_id;
  o.state_dir = c.state_dir;
  o.data_seed = c.partition_seed ? device_data_seed(*c.partition_seed, c.shard) : device_data_seed(s->client_->device_id());
  auto device = FederatedDevice::open(*s->model_.loaded.model, s->model_.model_id, *s->task_, std::move(mine), *s->client_, o, s->pool_.get(), &info.value());
  if (!device) return device.status();
  s->device_ = std::move(device.value());
  return s;
}

Result<Participation> DeviceSession::take_part(const RoundInfo& round) {
  auto p = device_->participate(round);
  if (p && p->submitted()) last_round_ = round.round;
  return p;
}

Result<RoundInfo> DeviceSession::wait_until_closed(uint64_t round, int poll_ms) {
  for (;;) {
    auto r = client_->round(task_id_, round);
    if (!r || !r->open()) return r;
    std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
  }
}

Result<EvalResult> DeviceSession::evaluate(const std::string& data_path) {
  auto t = load_device_task(model_, data_path);
  if (!t) return t.status();
  return t.value()->evaluate(pool_.get(), *model_.loaded.model, kDeviceEvalBatch);
}

}  // namespace pocketllm
