// Snapshots of a task's trainable tensors at a version of its log, built off the network threads: a
// bounded queue of jobs served by the snapshot threads. The head version is kept materialised (and its
// serialised bytes shared by every reply that sends them); an older version is rebuilt from the
// nearest stored checkpoint, so a rebuild replays at most checkpoint_every entries, and crossing a
// multiple of checkpoint_every stores one.
#include <chrono>

#include "http_util.h"
#include "pocketllm/common/safetensors.h"
#include "pocketllm/common/sha256.h"
#include "pocketllm/common/update_log.h"
#include "service_internal.h"

namespace pocketllm::server {

using protocol::ErrorCode;

namespace {

HttpResponse snapshot_reply(std::shared_ptr<const std::string> bytes, uint64_t version, const std::string& sha256) {
  HttpResponse r;
  r.content_type = "application/octet-stream";
  r.shared_body = std::move(bytes);
  r.headers.emplace_back("X-Pocketllm-Version", std::to_string(version));
  r.headers.emplace_back("X-Pocketllm-Sha256", sha256);
  r.route = "/v1/tasks/{task}/snapshot";
  return r;
}

}  // namespace

Result<std::string> Service::Task::serialize(const std::vector<std::vector<float>>& tensors, uint64_t version) const {
  std::vector<TensorToWrite> out;
  for (size_t i = 0; i < names.size(); ++i) out.push_back({names[i], DType::kF32, shapes[i], tensors[i].data()});
  return serialize_safetensors(out, {{"format", "pocketllm.snapshot"}, {"task", spec.id}, {"version", std::to_string(version)},
                                     {"base_model_id", spec.base_model_id}});
}

Status Service::Task::deserialize(const std::string& bytes, std::vector<std::vector<float>>* tensors) const {
  auto file = SafetensorsFile::from_bytes(bytes, "checkpoint");
  if (!file) return file.status();
  tensors->resize(names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    const TensorInfo* info = file->find(names[i]);
    if (!info || info->numel != base[i].size()) return corrupt("checkpoint: tensor " + names[i] + " missing or resized");
    (*tensors)[i].resize(base[i].size());
    POCKETLLM_RETURN_IF_ERROR(file->read_f32(*info, 0, info->numel, (*tensors)[i].data()));
  }
  return Status::ok();
}

Service::Reply Service::get_snapshot(const std::string& task, const std::map<std::string, std::string>& query, Done& done) {
  std::unique_ptr<SnapshotJob> job(new SnapshotJob{nullptr, 0, nullptr});
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tasks_.find(task);
    if (it == tasks_.end()) return error(ErrorCode::kUnknownTask, "no task " + task);
    job->task = it->second.get();  // tasks are never removed
    if (!job->task->has_weights)
      return error(ErrorCode::kNoSnapshots, "this server holds no base weights for task " + task +
                                                (job->task->weights_problem.empty() ? "" : " (" + job->task->weights_problem + ")"));
    job->version = job->task->rounds.version();
    if (query.count("version") && !parse_u64(query.at("version"), &job->version)) return error(ErrorCode::kBadQuery, "version must be a number");
    if (job->version > job->task->rounds.version())
      return error(ErrorCode::kBeyondLog, "version " + std::to_string(job->version) + " does not exist yet");
  }
  std::lock_guard<std::mutex> lock(snapshot_queue_mu_);
  if (snapshot_jobs_.size() >= opt_.snapshot_queue) {
    HttpResponse busy = error(ErrorCode::kBusy, "snapshot work is at capacity; retry shortly");
    busy.headers.emplace_back("Retry-After", "1");
    return busy;
  }
  job->done = std::move(done);
  snapshot_jobs_.push_back(std::move(job));
  snapshot_cv_.notify_one();
  return std::nullopt;
}

void Service::snapshot_loop() {
  for (;;) {
    std::unique_ptr<SnapshotJob> job;
    {
      std::unique_lock<std::mutex> lock(snapshot_queue_mu_);
      snapshot_cv_.wait(lock, [&] { return stop_snapshots_ || !snapshot_jobs_.empty(); });
      if (snapshot_jobs_.empty()) return;
      job = std::move(snapshot_jobs_.front());
      snapshot_jobs_.erase(snapshot_jobs_.begin());
    }
    HttpResponse r;
    try {
      r = build_snapshot(*job->task, job->version);
    } catch (const std::exception& e) {
      r = error(ErrorCode::kInternal, std::string("snapshot: ") + e.what());
    }
    r.route = "/v1/tasks/{task}/snapshot";
    job->done(std::move(r));
  }
}

// The entries [from, to) of the task's log applied to `tensors`, storing a checkpoint at every
// multiple of checkpoint_every passed on the way (those not stored yet).
Status Service::replay_to(Task& t, uint64_t from, uint64_t to, std::vector<std::vector<float>>* tensors) {
  std::vector<UpdateEntry> entries;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto& all = t.rounds.log().entries();
    entries.assign(all.begin() + static_cast<long>(from), all.begin() + static_cast<long>(to));
  }
  std::vector<NamedTensor> named;
  for (size_t i = 0; i < t.names.size(); ++i) named.push_back({t.names[i], (*tensors)[i].data(), (*tensors)[i].size()});
  const uint64_t k = std::max<uint64_t>(1, opt_.checkpoint_every);
  uint64_t at = from;
  while (at < to) {
    const uint64_t next = std::min(to, (at / k + 1) * k);
    replay_entries(pool_.get(), t.spec.dist, entries.data() + (at - from), next - at, named);
    at = next;
    if (at % k == 0) {
      auto bytes = t.serialize(*tensors, at);
      if (!bytes) return bytes.status();
      std::lock_guard<std::mutex> lock(store_mu_);
      POCKETLLM_RETURN_IF_ERROR(store_->put_checkpoint(t.spec.id, at, bytes.value()));
    }
  }
  return Status::ok();
}

HttpResponse Service::build_snapshot(Task& t, uint64_t version) {
  std::lock_guard<std::mutex> lock(t.snapshot_mu);  // one rebuild per task at a time (bounded memory)
  if (t.latest_bytes && t.latest_version == version) return snapshot_reply(t.latest_bytes, version, t.latest_sha256);
  if (version >= t.cache_version) {  // forward from the head cache, which follows
    Status s = replay_to(t, t.cache_version, version, &t.cache);
    if (!s) return error(ErrorCode::kInternal, s.message());
    t.cache_version = version;
    auto bytes = t.serialize(t.cache, version);
    if (!bytes) return error(ErrorCode::kInternal, bytes.status().message());
    t.latest_bytes = std::make_shared<const std::string>(std::move(bytes.value()));
    t.latest_version = version;
    t.latest_sha256 = sha256_hex(*t.latest_bytes);
    return snapshot_reply(t.latest_bytes, version, t.latest_sha256);
  }
  // An old version: from the nearest checkpoint at or before it (or the base), aside from the cache.
  std::vector<std::vector<float>> scratch;
  uint64_t from = 0;
  std::pair<uint64_t, std::string> cp;
  {
    std::lock_guard<std::mutex> store_lock(store_mu_);
    auto found = store_->checkpoint_at_or_before(t.spec.id, version);
    if (found) cp = std::move(found.value());
  }
  if (!cp.second.empty() && t.deserialize(cp.second, &scratch)) from = cp.first;
  else scratch = t.base;
  Status s = replay_to(t, from, version, &scratch);
  if (!s) return error(ErrorCode::kInternal, s.message());
  auto bytes = t.serialize(scratch, version);
  if (!bytes) return error(ErrorCode::kInternal, bytes.status().message());
  auto shared = std::make_shared<const std::string>(std::move(bytes.value()));
  const std::string sha = sha256_hex(*shared);
  return snapshot_reply(std::move(shared), version, sha);
}

}  // namespace pocketllm::server
