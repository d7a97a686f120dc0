// The aggregation service: tasks, rounds, submissions, the update log, snapshots, devices and auth,
// behind one handle(request) -> response entry point (the JSON API of docs/protocol.md). State lives in
// memory and in the SQLite store; every 2xx that changes state is committed first. Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <thread>
#include <tuple>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "pocketllm/common/status.h"
#include "pocketllm/common/thread_pool.h"
#include "pocketllm/server/http_types.h"
#include "pocketllm/server/metrics.h"
#include "pocketllm/server/rate_limiter.h"
#include "pocketllm/server/rounds.h"
#include "pocketllm/server/store.h"
#include "pocketllm/server/task_spec.h"

namespace pocketllm::server {

// Who may read /metrics: loopback peers only (and in-process callers), the admin credential, or anyone.
enum class MetricsExposure { kLoopback, kAdmin, kPublic };

struct ServiceOptions {
  std::string store_path = "pocketllm-server.db";
  Durability durability = Durability::kFull;
  std::string admin_token_sha256;     // hex SHA-256 of the admin bearer token (required)
  double device_rate_per_s = 20;      // per-device request rate (token bucket); 0 = unlimited
  double device_burst = 40;
  double auth_failure_rate_per_s = 1; // failed credentials / enrolment tokens per address (token bucket)
  double auth_failure_burst = 20;     //   beyond it: 429 until the bucket refills; 0 rate = unlimited
  MetricsExposure metrics = MetricsExposure::kLoopback;  // who may read /metrics
  size_t max_log_page = 10000;        // entries per /log page
  int snapshot_threads = 1;          // snapshot rebuilds run here, never on network threads
  size_t snapshot_queue = 8;          // snapshot requests waiting at most; beyond: 503 with Retry-After
  uint64_t checkpoint_every = 256;    // versions between stored checkpoints: a rebuild replays at most this many entries
  // A group commit that would carry fewer than kSmallGroupCommit submissions first waits this long for
  // more (one store transaction then carries them all). -1: the store's default — 500 µs on a shared
  // store (PostgreSQL, where each transaction costs the database ~150 µs of CPU), 0 on SQLite.
  int commit_linger_us = -1;
  std::function<int64_t()> clock_ms;  // wall clock in ms since the epoch (tests substitute their own)
  std::function<void(const std::string&)> log;  // operator log lines; never carries secrets or data
  // Masked secure-aggregation rounds unmask on a thread of their own (the server: requests are not held
  // up behind it); off, the tick that closes phase 4 unmasks in place (tests, the in-process simulator).
  bool background_unmasking = false;
};

constexpr size_t kSmallGroupCommit = 16;

class Service {
 public:
  static Result<std::unique_ptr<Service>> open(ServiceOptions options);
  ~Service();

  // Answers a request. `done` may be called on another thread (a submission is answered once its
  // group commit is durable); it is called exactly once.
  using Done = std::function<void(HttpResponse)>;
  void handle_async(const HttpRequest& request, Done done);
  // The same, waiting for the answer (tests, the in-process transport).
  HttpResponse handle(const HttpRequest& request);
  // Waits until every accepted submission's commit has finished (shutdown).
  void flush();
  // Closes due rounds (applying, extending or abandoning them) and opens the next ones.
  void tick();
  Metrics& metrics() { return metrics_; }
  // Every route the server answers, as (method, path pattern with {placeholders}): what
  // `pocketllm-server routes` prints and the OpenAPI check compares docs/openapi.yaml with.
  static std::vector<std::pair<std::string, std::string>> route_list();

 private:
  struct Task;
  struct Device {
    std::string secret_sha256;
    bool revoked = false;
    std::string token_sha256;  // the enrolment token it came with
  };
  explicit Service(ServiceOptions options);
  Status load();
  // `fresh`: the task was just created (its first round has seen nothing yet); otherwise an open masked
  // round lost its phase state with the memory being rebuilt and is abandoned.
  Status load_task(const StoredTask& stored, bool fresh = false);
  static Status load_weights(Task* t);
  int64_t now_ms() const { return opt_.clock_ms(); }
  void log(const std::string& line) const {
    if (opt_.log) opt_.log(line);
  }
  // A store operation failed (a full disk, a lost PostgreSQL connection): counted in /metrics and logged
  // as an ERROR line naming what failed and why — at most one line per 10 s, the next one saying how many
  // more failed in between — so an operator sees why clients get 503 store_unavailable.
  void store_failed(const std::string& what, const Status& why);
  std::mutex store_log_mu_;
  int64_t store_logged_ms_ = -1;
  uint64_t store_unlogged_ = 0;
  void tick_task(Task& task, int64_t now);
  // Whether a submission to this round awaits its group commit: a round closes only when every
  // submission it holds is durable (the next tick, after the commit). Caller holds mu_.
  bool commit_pending(const std::string& task, uint64_t round) const;
  // Replicas on a shared store (cluster.cpp): refresh from the store, and close due rounds when leading.
  void cluster_tick(int64_t now);
  bool refresh_all(int64_t now);  // tasks, rounds and revocations from the store; false when it failed
  static constexpr uint64_t kChangesUnseen = ~uint64_t{0};  // the next tick refreshes every task
  uint64_t seen_changes_ = kChangesUnseen;
  Status refresh_task(Task& task, bool force);
  void close_due(Task& task, int64_t now);
  // A device enrolled through another server: looked up in the store and remembered. Caller holds mu_.
  bool find_device_in_store(const std::string& id);
  int leading_ = -1;  // replicas: unknown (-1) until the first tick, then whether this server leads

  // Routing (routes.cpp): a table of (method, path pattern, who may call, handler).
  struct Call;
  struct Route;
  using Reply = std::optional<HttpResponse>;  // nullopt: answered later, through the call's `done`
  static const std::vector<Route>& routes();
  Reply dispatch(Call& call);
  enum class Caller { kNone, kAdmin, kDevice };
  struct Auth {
    Caller caller = Caller::kNone;
    std::string device;
    int status = 401;
    std::string error;
  };
  Auth authenticate(const HttpRequest& req);
  std::optional<HttpResponse> refuse_if_guessing(const Call& c);
  void count_auth_failure(const Call& c);
  Reply enrol_limited(Call& c);
  Reply metrics_for(Call& c);
  // Endpoints for the operator (api_admin.cpp) and for devices (api_device.cpp).
  HttpResponse create_task(const std::string& body);
  HttpResponse create_enrol_token(const std::string& body);
  HttpResponse enrol(const std::string& body);
  HttpResponse revoke(const std::string& device);
  // The devices in id order, a page at a time (?limit=, ?after=<last id of the previous page>).
  HttpResponse list_devices(const std::map<std::string, std::string>& query);
  // Closes the round now (a masked round: its current phase). With `phase`, only when the masked round
  // is in that phase — a no-op otherwise, so a caller racing the ticks never closes the next phase.
  HttpResponse close_round(const std::string& task, const std::string& round, const std::string& phase = "");
  HttpResponse list_tasks();
  HttpResponse get_task(const std::string& id);
  HttpResponse get_round(const std::string& task, const std::string& round, bool admin, const std::string& device = "");
  Reply enforce_token_cap(const Task& t, uint64_t round_id, const std::string& device);
  Reply submit(const std::string& task, const std::string& round, const std::string& device, const std::string& body, Done& done);
  HttpResponse get_log(const std::string& task, const std::map<std::string, std::string>& query);
  // Secure aggregation (api_secagg.cpp): one device message of a masked round's phase (POST), or what
  // the device reads at a phase's start (GET): step is keys, shares, masked or unmask; roster, inbox or
  // survivors.
  HttpResponse secagg_post(const std::string& task, const std::string& round, const std::string& step, const std::string& device,
                           const std::string& body);
  HttpResponse secagg_get(const std::string& task, const std::string& round, const std::string& step, const std::string& device);
  HttpResponse* find_secagg(const std::string& task, const std::string& round, secagg::AggregatorRound** out, HttpResponse* err);
  Reply get_snapshot(const std::string& task, const std::map<std::string, std::string>& query, Done& done);
  // Snapshot work (snapshots.cpp): one job per request, on the snapshot threads.
  struct SnapshotJob;
  void snapshot_loop();
  HttpResponse build_snapshot(Task& t, uint64_t version);
  Status replay_to(Task& t, uint64_t from, uint64_t to, std::vector<std::vector<float>>* tensors);
  // Writes batches of accepted submissions: through `own` (a shared store's extra connection), or
  // through store_ under store_mu_.
  void committer_loop(Store* own);
  HttpResponse render_metrics();
  // The status page and its data (ui.cpp).
  static HttpResponse ui_page();
  HttpResponse ui_status();

  ServiceOptions opt_;
  std::unique_ptr<Store> store_;
  Metrics metrics_;
  std::unique_ptr<RateLimiter> limiter_;
  std::unique_ptr<RateLimiter> auth_failures_;  // by remote address
  std::unique_ptr<ThreadPool> pool_;
  std::mutex snapshot_queue_mu_;
  std::condition_variable snapshot_cv_;
  std::vector<std::unique_ptr<SnapshotJob>> snapshot_jobs_;
  std::vector<std::thread> snapshot_workers_;
  // Background unmasking jobs (background_unmasking): each thread with its finished flag; joined when
  // finished at the next start, and all of them at destruction.
  std::mutex secagg_jobs_mu_;
  std::vector<std::pair<std::thread, std::shared_ptr<std::atomic<bool>>>> secagg_jobs_;
  void run_secagg_job(std::function<void()> job);
  bool stop_snapshots_ = false;
  std::mutex mu_;        // guards tasks_, devices_, pending_
  std::mutex store_mu_;  // guards store_; taken after mu_ when both are needed
  std::map<std::string, std::unique_ptr<Task>> tasks_;
  std::map<std::string, Device> devices_;
  // Group commit: submissions accepted in memory wait here for one transaction (one fsync) per batch;
  // their replies (and those of identical resubmissions meanwhile) are sent once it is durable.
  using PendingKey = std::tuple<std::string, uint64_t, std::string>;  // task, round, device
  std::map<PendingKey, std::vector<Done>> pending_;
  std::vector<StoredSubmission> queue_;
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  bool stop_committer_ = false;
  int linger_us_ = 0;  // commit_linger_us resolved for this store
  std::vector<std::unique_ptr<Store>> commit_stores_;  // shared stores: one connection per committer
  std::vector<std::thread> committers_;
};

}  // namespace pocketllm::server
