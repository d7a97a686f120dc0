#include "pocketllm/server/service.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <chrono>
#include <utility>

#include "pocketllm/common/safetensors.h"
#include "pocketllm/common/json_util.h"
#include "pocketllm/common/sha256.h"
#include "http_util.h"
#include "service_internal.h"

namespace pocketllm::server {

std::string random_hex(size_t bytes) {
  std::vector<uint8_t> buf(bytes);
  if (RAND_bytes(buf.data(), static_cast<int>(bytes)) != 1) std::abort();  // no entropy: never issue weak secrets
  return to_hex(buf.data(), buf.size());
}

std::string sha256_hex(const std::string& text) { return to_hex(sha256(text)); }

bool same_secret(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

Result<std::unique_ptr<Service>> Service::open(ServiceOptions options) {
  if (options.admin_token_sha256.size() != 64) return invalid_argument("an admin token (its SHA-256) is required");
  if (!options.clock_ms)
    options.clock_ms = [] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    };
  std::unique_ptr<Service> s(new Service(std::move(options)));
  auto store = Store::open(s->opt_.store_path, s->opt_.durability);
  if (!store) return store.status();
  s->store_ = std::move(store.value());
  s->limiter_ = std::make_unique<RateLimiter>(s->opt_.device_rate_per_s, s->opt_.device_burst);
  s->auth_failures_ = std::make_unique<RateLimiter>(s->opt_.auth_failure_rate_per_s, s->opt_.auth_failure_burst);
  s->pool_ = std::make_unique<ThreadPool>(std::max(1, s->opt_.snapshot_threads));
  POCKETLLM_RETURN_IF_ERROR(s->load());
  Service* raw = s.get();
  s->linger_us_ = s->opt_.commit_linger_us >= 0 ? s->opt_.commit_linger_us : s->store_->shared() ? 500 : 0;
  if (s->store_->shared()) {
    // A shared store: the group commit runs on a connection of its own, off the store lock (a tick's
    // refresh never holds a commit up). One committer: two overlapping ones measured slower on 2 cores
    // (bench/run_cluster_bench.sh: the extra PostgreSQL backend costs more CPU than the overlap saves).
    for (int i = 0; i < 1; ++i) {
      auto c = Store::open(s->opt_.store_path, s->opt_.durability);
      if (!c) return c.status();
      Store* conn = c.value().get();
      s->commit_stores_.push_back(std::move(c.value()));
      s->committers_.emplace_back([raw, conn] { raw->committer_loop(conn); });
    }
  } else {
    s->committers_.emplace_back([raw] { raw->committer_loop(nullptr); });
  }
  for (int i = 0; i < std::max(1, s->opt_.snapshot_threads); ++i) s->snapshot_workers_.emplace_back([raw] { raw->snapshot_loop(); });
  return s;
}

Service::Service(ServiceOptions options) : opt_(std::move(options)) {}

Service::~Service() {
  {
    std::lock_guard<std::mutex> lock(secagg_jobs_mu_);
    for (auto& [thread, done] : secagg_jobs_) thread.join();  // a job holds only its round's state machine
    secagg_jobs_.clear();
  }
  {
    std::lock_guard<std::mutex> lock(snapshot_queue_mu_);
    stop_snapshots_ = true;  // queued jobs are answered first
  }
  snapshot_cv_.notify_all();
  for (auto& w : snapshot_workers_) w.join();
  if (!committers_.empty()) {
    {
      std::lock_guard<std::mutex> lock(queue_mu_);
      stop_committer_ = true;
    }
    queue_cv_.notify_all();
    for (auto& c : committers_) c.join();  // the loops drain the queue first: nothing accepted is left unanswered
  }
}

void Service::flush() {
  for (int i = 0; i < 30000; ++i) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      std::lock_guard<std::mutex> qlock(queue_mu_);
      if (queue_.empty() && pending_.empty()) return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void Service::committer_loop(Store* own) {
  for (;;) {
    std::vector<StoredSubmission> batch;
    {
      std::unique_lock<std::mutex> lock(queue_mu_);
      queue_cv_.wait(lock, [&] { return stop_committer_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      batch.swap(queue_);
    }
    if (linger_us_ > 0 && batch.size() < kSmallGroupCommit) {
      // A small group: wait briefly for more, so that one transaction carries them (replicas that
      // split the load commit small groups, and each transaction has a fixed cost in the database).
      std::this_thread::sleep_for(std::chrono::microseconds(linger_us_));
      std::lock_guard<std::mutex> lock(queue_mu_);
      for (StoredSubmission& x : queue_) batch.push_back(std::move(x));
      queue_.clear();
    }
    Result<std::vector<SubmissionWrite>> written = std::vector<SubmissionWrite>{};
    if (own) {
      written = own->insert_submissions(batch);
    } else {
      std::lock_guard<std::mutex> lock(store_mu_);
      written = store_->insert_submissions(batch);
    }
    const Status saved = written.status();
    if (!saved) store_failed("saving " + std::to_string(batch.size()) + " submissions (each answered 503)", saved);
    std::vector<std::pair<Done, HttpResponse>> replies;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t b = 0; b < batch.size(); ++b) {
        const StoredSubmission& x = batch[b];
        const PendingKey key{x.task, x.round, x.submission.device};
        auto waiters = std::move(pending_[key]);
        pending_.erase(key);
        auto it = tasks_.find(x.task);
        const SubmissionWrite w = saved ? written.value()[b] : SubmissionWrite::kWritten;
        if (!saved || w == SubmissionWrite::kConflict || w == SubmissionWrite::kRoundClosed || w == SubmissionWrite::kTokenCap) {
          if (it != tasks_.end()) it->second->rounds.withdraw(x.round, x.submission.device);
          HttpResponse refusal;
          std::string counted;
          if (!saved) {
            refusal = submission_reply(503, x, 0);
            counted = "store_unavailable";
          } else if (w == SubmissionWrite::kConflict) {
            refusal = error(protocol::ErrorCode::kConflictingResubmission, "another server holds a different submission of this device for this round");
            counted = "conflicting_resubmission";
          } else if (w == SubmissionWrite::kTokenCap) {
            refusal = error(protocol::ErrorCode::kTokenCap, "round " + std::to_string(x.round) + " already holds " + std::to_string(x.max_per_token) +
                                                                " submissions from devices of this device's enrolment token (the task's max_per_token)");
            counted = protocol::error_code_name(protocol::ErrorCode::kTokenCap);
          } else {
            refusal = error(protocol::ErrorCode::kRoundClosed, "round " + std::to_string(x.round) + " closed before the submission was saved");
            counted = "round_closed";
          }
          refusal.route = "/v1/tasks/{task}/rounds/{round}/submissions";
          metrics_.count_submission(counted);
          for (size_t i = 0; i < waiters.size(); ++i) replies.emplace_back(std::move(waiters[i]), refusal);
          continue;
        }
        metrics_.count_submission(w == SubmissionWrite::kSame ? "duplicate" : "accepted");
        const Round* r = it != tasks_.end() ? it->second->rounds.round(x.round) : nullptr;
        const size_t count = r ? r->submission_count() : 0;
        for (size_t i = 0; i < waiters.size(); ++i)
          replies.emplace_back(std::move(waiters[i]), submission_reply(i == 0 && w == SubmissionWrite::kWritten ? 201 : 200, x, count));
      }
    }
    if (!saved) log("group commit of " + std::to_string(batch.size()) + " submissions failed: " + saved.message());
    for (auto& [done, resp] : replies) done(std::move(resp));
  }
}

Status Service::load() {
  auto devices = store_->load_devices();
  if (!devices) return devices.status();
  for (const auto& d : devices.value()) devices_[d.id] = {d.secret_sha256, d.revoked, d.token_sha256};
  auto tasks = store_->load_tasks();
  if (!tasks) return tasks.status();
  for (const auto& t : tasks.value()) POCKETLLM_RETURN_IF_ERROR(load_task(t));
  log(store_->describe() + " (schema " + std::to_string(store_->schema_version()) + "): " + std::to_string(tasks_.size()) + " tasks, " + std::to_string(devices_.size()) + " devices");
  return Status::ok();
}


// Builds a task's in-memory state from the store (at start, and after a failed commit).
Status Service::load_task(const StoredTask& stored, bool fresh) {
  nlohmann::json j = parse_json(stored.spec_json);
  auto spec = parse_task_spec(j);
  if (!spec) return corrupt("store: task " + stored.id + ": " + spec.status().message());
  auto task = std::make_unique<Task>(spec.value(), stored);
  auto rounds = store_->load_rounds(stored.id);
  if (!rounds) return rounds.status();
  auto log_entries = store_->load_log(stored.id);
  if (!log_entries) return log_entries.status();
  POCKETLLM_RETURN_IF_ERROR(task->rounds.restore(std::move(rounds.value()), std::move(log_entries.value())));
  if (opt_.background_unmasking) task->rounds.set_secagg_runner([this](std::function<void()> job) { run_secagg_job(std::move(job)); });
  if (fresh) {
    POCKETLLM_RETURN_IF_ERROR(task->rounds.resume_fresh_secagg());
  } else if (task->rounds.abandon_interrupted_secagg()) {
    // Its phase state died with the process: abandoned (nothing of it was applied), and the next one opens.
    const Round lost = *task->rounds.current();  // a copy: opening the next round may move the vector
    auto next = task->rounds.open_round(now_ms());
    POCKETLLM_RETURN_IF_ERROR(store_->update_round(stored.id, lost, next ? &next.value() : nullptr));
    log("task " + stored.id + " round " + std::to_string(lost.id) + " abandoned: " + lost.abandon_reason);
  }
  if (!task->spec.base_weights.empty()) {
    Status w = load_weights(task.get());
    if (!w) {
      task->weights_problem = w.message();
      log("task " + stored.id + ": snapshots unavailable: " + w.message());
    }
  }
  tasks_[stored.id] = std::move(task);
  return Status::ok();
}

void Service::run_secagg_job(std::function<void()> job) {
  std::lock_guard<std::mutex> lock(secagg_jobs_mu_);
  for (auto it = secagg_jobs_.begin(); it != secagg_jobs_.end();) {  // reap the finished ones
    if (it->second->load()) {
      it->first.join();
      it = secagg_jobs_.erase(it);
    } else {
      ++it;
    }
  }
  auto done = std::make_shared<std::atomic<bool>>(false);
  secagg_jobs_.emplace_back(std::thread([job = std::move(job), done] {
                              job();
                              done->store(true);
                            }),
                            done);
}

Status Service::load_weights(Task* t) {
  auto file = SafetensorsFile::open(t->spec.base_weights);
  if (!file) return file.status();
  for (const auto& info : file->tensors()) {
    t->names.push_back(info.name);
    t->shapes.push_back(info.shape);
    std::vector<float> data(info.numel);
    POCKETLLM_RETURN_IF_ERROR(file->read_f32(info, 0, info.numel, data.data()));
    t->base.push_back(std::move(data));
  }
  if (t->names.empty()) return invalid_argument(t->spec.base_weights + " holds no tensors");
  t->cache = t->base;
  t->cache_version = 0;
  t->has_weights = true;
  return Status::ok();
}

void Service::tick() {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = now_ms();
  if (store_->shared()) return cluster_tick(now);
  for (auto& [id, task] : tasks_) tick_task(*task, now);
}

bool Service::commit_pending(const std::string& task, uint64_t round) const {
  auto first = pending_.lower_bound(PendingKey{task, round, std::string()});
  return first != pending_.end() && std::get<0>(first->first) == task && std::get<1>(first->first) == round;
}

void Service::tick_task(Task& task, int64_t now) {
  const Round* cur = task.rounds.current();
  if (!cur || cur->state != RoundState::kOpen) return;
  const uint64_t id = cur->id;
  if (commit_pending(task.spec.id, id)) return;
  std::lock_guard<std::mutex> store_lock(store_mu_);
  const uint32_t extensions_before = cur->extensions;
  const uint64_t version_before = task.rounds.version();
  auto applied = task.rounds.tick(now);
  const Round& r = *task.rounds.round(id);
  if (!applied) {
    log("task " + task.spec.id + " round " + std::to_string(id) + ": aggregation failed: " + applied.status().message());
    return;
  }
  Status saved;
  std::string outcome;
  if (r.state == RoundState::kOpen) {
    if (r.extensions == extensions_before) return;  // nothing changed
    outcome = "extended";
    saved = store_->update_round(task.spec.id, r, nullptr);
  } else {
    auto next = task.rounds.open_round(now);
    // A private task whose budget is spent opens no next round; the closed one is still saved.
    const bool budget_spent = !next && next.status().code() == StatusCode::kResourceExhausted;
    if (!next && !budget_spent) {
      log("task " + task.spec.id + ": cannot open a round: " + next.status().message());
      return;
    }
    const Round* next_round = next ? &next.value() : nullptr;
    const Round& closed = *task.rounds.round(id);
    if (closed.state == RoundState::kApplied) {
      outcome = "applied";
      saved = store_->apply_round(task.spec.id, closed, applied.value(), version_before, next_round);
    } else {
      outcome = "abandoned" + (closed.abandon_reason.empty() ? std::string() : " (" + closed.abandon_reason + ")");
      saved = store_->update_round(task.spec.id, closed, next_round);
    }
    if (budget_spent && saved) log("task " + task.spec.id + ": no further rounds: " + next.status().message());
  }
  if (!saved) {
    // Memory ran ahead of the store: rebuild this task from what is durable and try again next tick.
    store_failed("task " + task.spec.id + " round " + std::to_string(id) + ": saving its close (the task is reloaded from the store and the round retried)", saved);
    StoredTask stored = task.stored;
    Status reload = load_task(stored);
    if (!reload) log("task " + stored.id + ": reload failed: " + reload.message());
    return;
  }
  metrics_.count_round(outcome.substr(0, outcome.find(' ')));
  if (outcome != "extended") task.rounds.release_submissions(id);  // durable: the store keeps them
  const Round& after = *task.rounds.round(id);
  log("task " + task.spec.id + " round " + std::to_string(id) + " " + outcome + " with " +
      std::to_string(after.submission_count()) + " submissions; version " + std::to_string(task.rounds.version()));
}

void Service::store_failed(const std::string& what, const Status& why) {
  metrics_.count_store_error();
  const int64_t now = now_ms();
  uint64_t between = 0;
  {
    std::lock_guard<std::mutex> lock(store_log_mu_);
    if (store_logged_ms_ >= 0 && now - store_logged_ms_ < 10000) {
      ++store_unlogged_;
      return;
    }
    store_logged_ms_ = now;
    between = std::exchange(store_unlogged_, 0);
  }
  std::string line = "ERROR: store: " + what + " failed: " + why.message();
  if (between > 0) line += " (and " + std::to_string(between) + " more store failures in the last 10 s)";
  log(line);
}

}  // namespace pocketllm::server
