// The server's durable state in SQLite (WAL mode): tasks, rounds with their submissions, each task's
// update log, devices (credential hashes only) and enrolment tokens (hashes only). Every method is one
// transaction that is durable when it returns ok; the service acknowledges a request only after that.
// Not thread-safe: the service serialises calls.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pocketllm/common/status.h"
#include "pocketllm/common/update_log.h"
#include "pocketllm/server/rounds.h"

struct sqlite3;

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
};

enum class Durability { kFull, kNormal };  // fsync at every commit / WAL-only (survives process crashes)

class Store {
 public:
  static Result<std::unique_ptr<Store>> open(const std::string& path, Durability durability);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Tasks.
  Status insert_task(const StoredTask& task, const Round& first_round);
  Result<std::vector<StoredTask>> load_tasks();
  // Id order; the open round with its submissions, closed rounds with their submission count only.
  Result<std::vector<Round>> load_rounds(const std::string& task);
  Result<std::vector<Submission>> load_submissions(const std::string& task, uint64_t round);
  Result<UpdateLog> load_log(const std::string& task);
  // Snapshot checkpoints: the trainable tensors (safetensors bytes) at a version of a task's log.
  Status put_checkpoint(const std::string& task, uint64_t version, const std::string& data);
  Result<std::pair<uint64_t, std::string>> checkpoint_at_or_before(const std::string& task, uint64_t version);

  // Submissions accepted into open rounds, in one transaction (one fsync): the service's group commit.
  Status insert_submissions(const std::vector<StoredSubmission>& batch);
  // A round that changed without applying (extended or abandoned), plus the next round when one opens.
  Status update_round(const std::string& task, const Round& round, const Round* next);
  // A round applied: its entries appended at versions first_version.., its state saved, the next opened.
  Status apply_round(const std::string& task, const Round& round, const std::vector<UpdateEntry>& entries,
                     uint64_t first_version, const Round* next);

  // Devices and enrolment.
  Status insert_enrol_token(const std::string& token_sha256, uint32_t uses, int64_t expires_ms, int64_t now_ms);
  // Consumes one use of the token and records the device, atomically. kNotFound: unknown, used up or expired.
  Status enrol_device(const std::string& token_sha256, const StoredDevice& device, int64_t now_ms);
  // Marks the device revoked and deletes its submissions to open rounds, in one transaction.
  Status revoke_device(const std::string& id, int64_t now_ms);
  Result<std::vector<StoredDevice>> load_devices();

 private:
  explicit Store(sqlite3* db) : db_(db) {}
  Status exec(const char* sql);
  Status begin();
  Status commit();
  void rollback();
  // Runs f inside one transaction: committed when it returns ok, rolled back otherwise.
  template <class F>
  Status transaction(F f) {
    POCKETLLM_RETURN_IF_ERROR(begin());
    Status s = f();
    if (!s) {
      rollback();
      return s;
    }
    return commit();
  }
  Status put_round(const std::string& task, const Round& round);
  sqlite3* db_;
};

}  // namespace pocketllm::server
