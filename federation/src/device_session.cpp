#include "pocketllm/federation/device_session.h"

#include <chrono>
#include <filesystem>
#include <thread>

#include "pocketllm/client/memory_estimate.h"
#include "pocketllm/common/cancel.h"
#include "pocketllm/client/paired_forward.h"

namespace pocketllm {
namespace {

// Whether the rounds fit the budget, and (*pair) how a step's two passes run: without a budget the
// engine's default (auto); with one, at once when the budget holds a second pass's activations too.
Status check_budget(const DeviceModel& m, const TaskInfo& info, uint64_t budget, PairMode* pair) {
  const auto b = pair_under_budget(*m.loaded.model, NamePatterns(""), static_cast<int>(info.batch_size), m.task_options.max_length, budget);
  *pair = b.pair;
  if (b.fits) return Status::ok();
  const MemoryEstimate& e = b.estimate;
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
  if (c.model_path.empty() && (c.model == nullptr || !c.model->model)) return invalid_argument("a device needs a model");
  for (const std::string* f : {&c.task_id, &c.data_path, &c.state_dir})
    if (f->empty()) return invalid_argument("task id, model, data and state directory are required");
  std::unique_ptr<DeviceSession> s(new DeviceSession());
  if (Status st = s->init(c); !st) {
    if (c.model && s->model_.loaded.model) *c.model = s->release_model();  // the caller keeps its model
    return st;
  }
  return s;
}

// long: device assembly in order — state dir, client and credential, task, model, budget, data, order, device.
Status DeviceSession::init(DeviceConfig& c) {
  task_id_ = c.task_id;
  auto client = FederationClient::open(std::move(c.transport), c.server_url, c.credentials_file, c.enrolment_token, c.retry);
  if (!client) return client.status();
  client_ = std::move(client.value());
  auto info = client_->task(c.task_id);
  if (!info) return info.status();
  Result<DeviceModel> m = c.model ? prepare_device_model(std::move(*c.model),
                                                         c.model_id.empty() ? c.model->model->weights().compute_model_id() : c.model_id,
                                                         info.value())
                                  : load_device_model(c.model_path, info.value());
  if (!m) return m.status();
  model_ = std::move(m.value());
  PairMode pair = PairMode::kAuto;
  POCKETLLM_RETURN_IF_ERROR(check_budget(model_, info.value(), c.memory_budget_bytes, &pair));
  auto t = load_device_task(model_, c.data_path);
  if (!t) return t.status();
  task_ = std::move(t.value());
  std::vector<size_t> mine(task_->size());
  for (size_t i = 0; i < mine.size(); ++i) mine[i] = i;
  if (c.select_examples) {
    auto picked = c.select_examples(*task_);
    if (!picked) return picked.status();
    mine = std::move(picked.value());
  }
  examples_ = mine.size();
  POCKETLLM_RETURN_IF_ERROR(make_state_dir(c.state_dir));  // only once everything the server said checked out
  pool_ = std::make_unique<ThreadPool>(c.threads);
  FederatedDeviceOptions o;
  o.task_id = c.task_id;
  o.state_dir = c.state_dir;
  o.data_seed = c.partition_seed ? device_data_seed(*c.partition_seed, c.shard) : device_data_seed(client_->device_id());
  auto device = FederatedDevice::open(*model_.loaded.model, model_.model_id, *task_, std::move(mine), *client_, o, pool_.get(), &info.value());
  if (!device) return device.status();
  device_ = std::move(device.value());
  device_->pair = pair;
  return Status::ok();
}

LoadedModel DeviceSession::release_model() {
  device_.reset();
  task_.reset();
  return std::move(model_.loaded);
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
    throw_if_cancelled();  // the caller's cancellation (the SDK's pllm_cancel, the CLI's Ctrl-C) ends the wait
  }
}

Result<EvalResult> DeviceSession::evaluate(const std::string& data_path) {
  auto t = load_device_task(model_, data_path);
  if (!t) return t.status();
  return t.value()->evaluate(pool_.get(), *model_.loaded.model, kDeviceEvalBatch);
}

}  // namespace pocketllm
