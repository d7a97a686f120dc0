// The server's durable state: tasks, rounds with their submissions, each task's update log, devices
// (credential hashes only) and enrolment tokens (hashes only), in SQLite (WAL mode) or PostgreSQL.
// The schema and its migrations: docs/server.md "Store".
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "pocketllm/common/status.h"
#include "pocketllm/common/update_log.h"
#include "pocketllm/server/rounds.h"

namespace pocketllm::server {

struct StoredTask {
  std::string id;
  std::string spec_json;    // the training spec and round policy as the operator gave them (validated)
  uint64_t seed_key = 0;    // round seeds derive from it
  int64_t created_ms = 0;
  uint64_t sampling_key = 0;  // private tasks: which devices a round samples (secret; round seeds are public)
};

struct StoredDevice {
  std::string id;
  std::string secret_sha256;  // hex SHA-256 of the device secret; the secret itself is never stored
  int64_t created_ms = 0;
  bool revoked = false;
  std::string token_sha256;   // the enrolment token it came with ("" for devices enrolled before it was kept)
};

struct StoredSubmission {
  std::string task;
  uint64_t round = 0;
  Submission submission;
  std::string stats_json;  // loss statistics the device reported
  int64_t received_ms = 0;
  // The task's Sybil cap: the round takes at most max_per_token devices enrolled with the device's token
  // (token_sha256; 0: no cap). A shared store enforces it across servers when writing (kTokenCap); a
  // single server's memory already did, and SQLite ignores it.
  std::string token_sha256;
  uint32_t max_per_token = 0;
};

enum class Durability { kFull, kNormal };  // fsync at every commit / WAL-only (survives process crashes)

// What became of one submission of a batch: written, or found already there (the same scalars or
// different ones, from another server of a cluster), or refused because its round is closed in the store
// or (a shared store) the round already holds max_per_token submissions from its enrolment token.
enum class SubmissionWrite { kWritten, kSame, kConflict, kRoundClosed, kTokenCap };

// A round's state in the store at a glance: what a replica compares with its memory to see whether
// another server changed the task (a round closed, extended or opened; the log grew).
struct TaskHead {
  uint64_t round = 0;  // the latest round's id (0: none)
  std::string state;   // its state name
  int64_t deadline_ms = 0;
  uint32_t extensions = 0;
  uint64_t base_version = 0;  // the log's length when it opened (the log only grows when a round closes)
  bool operator==(const TaskHead& o) const {
    return round == o.round && state == o.state && deadline_ms == o.deadline_ms && extensions == o.extensions &&
           base_version == o.base_version;
  }
  bool operator!=(const TaskHead& o) const { return !(*this == o); }
};

// What closing (or extending) a round writes, computed from the submissions as committed.
struct RoundClosing {
  bool changed = false;            // false: nothing to write (not due after all)
  Round round;                     // the round's new state
  std::vector<UpdateEntry> entries;  // appended at first_version.. when it applied
  uint64_t first_version = 0;
  std::optional<Round> next;       // the round that opens after it
};

// The store interface. Two backends: SQLite (one server, the embedded default) and PostgreSQL (shared
// by replicas). Every method is one transaction, durable when it returns ok; the service acknowledges a
// request only after that. Writes to a round only ever move it out of the open state once: a write that
// finds the round already closed (by another replica) changes nothing. Not thread-safe: the service
// serialises calls.
class Store {
 public:
  // `location`: a file path (SQLite) or a postgresql:// URL. Applies the schema migrations the store lacks.
  static Result<std::unique_ptr<Store>> open(const std::string& location, Durability durability);
  virtual ~Store() = default;
  Store() = default;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Other servers may write to this store (PostgreSQL): the service then refreshes from it.
  virtual bool shared() const = 0;
  virtual std::string describe() const = 0;  // for the operator's log; never carries a password
  virtual int schema_version() = 0;

  // Tasks.
  virtual Status insert_task(const StoredTask& task, const Round& first_round) = 0;
  virtual Result<std::vector<StoredTask>> load_tasks() = 0;
  // Id order; the open round with its submissions, closed rounds with their submission count only.
  virtual Result<std::vector<Round>> load_rounds(const std::string& task) = 0;
  virtual Result<std::vector<Submission>> load_submissions(const std::string& task, uint64_t round) = 0;
  virtual Result<UpdateLog> load_log(const std::string& task) = 0;
  Result<TaskHead> task_head(const std::string& task);
  // A counter every write that changes a task's rounds, creates a task or revokes a device advances
  // (shared stores): a replica whose counter did not move has nothing to refresh. SQLite: always 0.
  virtual Result<uint64_t> change_counter() = 0;
  // Every task's head in one query (replicas compare them with memory on every tick).
  Result<std::map<std::string, TaskHead>> task_heads() { return heads(nullptr); }
  virtual Result<uint64_t> count_submissions(const std::string& task, uint64_t round) = 0;
  // Snapshot checkpoints: the trainable tensors (safetensors bytes) at a version of a task's log.
  virtual Status put_checkpoint(const std::string& task, uint64_t version, const std::string& data) = 0;
  virtual Result<std::pair<uint64_t, std::string>> checkpoint_at_or_before(const std::string& task, uint64_t version) = 0;

  // Submissions accepted into open rounds, in one transaction (one fsync): the service's group commit.
  // One outcome per submission, in order; a submission is written only while its round is open.
  virtual Result<std::vector<SubmissionWrite>> insert_submissions(const std::vector<StoredSubmission>& batch) = 0;
  // The round writes, the same logic on both backends over the primitives below (store.cpp):
  // A round that changed without applying (extended or abandoned), plus the next round when one opens.
  Status update_round(const std::string& task, const Round& round, const Round* next);
  // A round applied: its entries appended at versions first_version.., its state saved, the next opened.
  Status apply_round(const std::string& task, const Round& round, const std::vector<UpdateEntry>& entries,
                     uint64_t first_version, const Round* next);
  // Closes a round under the store's lock on it (replicas): reads its submissions as committed, lets
  // `decide` compute the outcome, writes it, in one transaction. No submission can be written to the
  // round meanwhile. kMismatch when the round is no longer open (another server closed it).
  using Decide = std::function<Result<RoundClosing>(std::vector<Submission> committed)>;
  Status close_round(const std::string& task, uint64_t round, const Decide& decide);

  // Devices and enrolment.
  virtual Status insert_enrol_token(const std::string& token_sha256, uint32_t uses, int64_t expires_ms, int64_t now_ms) = 0;
  // Consumes one use of the token and records the device, atomically. kNotFound: unknown, used up or expired.
  virtual Status enrol_device(const std::string& token_sha256, const StoredDevice& device, int64_t now_ms) = 0;
  // Marks the device revoked and deletes its submissions to open rounds, in one transaction.
  virtual Status revoke_device(const std::string& id, int64_t now_ms) = 0;
  virtual Result<std::vector<StoredDevice>> load_devices() = 0;
  // One device (replicas: enrolled through another server). kNotFound when unknown.
  virtual Result<StoredDevice> load_device(const std::string& id) = 0;
  // Devices revoked at or after `since_ms` (replicas: revoked through another server).
  virtual Result<std::vector<std::string>> revoked_since(int64_t since_ms) = 0;
  // How many devices the store holds: {active, revoked} (replicas: those enrolled anywhere).
  virtual Result<std::pair<uint64_t, uint64_t>> count_devices() = 0;

  // Leadership among replicas: whether this server closes rounds. A shared store grants it to one
  // connection at a time (a PostgreSQL advisory lock, released when that server dies); SQLite always.
  virtual bool try_lead() = 0;

 protected:
  // The latest round of every task (or of `only`), in one query.
  virtual Result<std::map<std::string, TaskHead>> heads(const std::string* only) = 0;
  // Runs f in one transaction: committed when it returns ok, rolled back otherwise.
  virtual Status in_transaction(const std::function<Status()>& f) = 0;
  // Inside a transaction: locks the round against writers (SQLite: the write transaction itself;
  // PostgreSQL: its round lock taken exclusively and FOR UPDATE on its row) and returns its state name,
  // "" when there is no such round.
  virtual Result<std::string> lock_round(const std::string& task, uint64_t round) = 0;
  virtual Result<std::vector<Submission>> committed_submissions(const std::string& task, uint64_t round) = 0;
  // Inside a transaction: the round's state (never reopening a closed one) and, when given, the next round.
  virtual Status put_round(const std::string& task, const Round& round) = 0;
  // Inside a transaction: entries at versions first_version.., the round's state and the next round.
  virtual Status write_applied(const std::string& task, const Round& round, const std::vector<UpdateEntry>& entries,
                               uint64_t first_version, const Round* next) = 0;
};

// The backends (store_sqlite.cpp, store_postgres.cpp).
Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path, Durability durability);
Result<std::unique_ptr<Store>> open_postgres_store(const std::string& url, Durability durability);
bool is_postgres_url(const std::string& location);

}  // namespace pocketllm::server
