#include "pocketllm/server/store.h"
#include "store_codec.h"

#include <sqlite3.h>

#include <cstdlib>
#include <cstring>
#include <map>

namespace pocketllm::server {
namespace {

// SQLite's message for the last failure, with the operating system's reason when one caused it: "disk
// I/O error" alone does not tell a full disk (ENOSPC) from a file-size limit (EFBIG) or a read-only one.
std::string sqlite_reason(sqlite3* db) {
  std::string msg = sqlite3_errmsg(db);
  if (const int e = sqlite3_system_errno(db); e != 0) {
    msg += std::string(" (") + std::strerror(e) + ")";
  } else if (sqlite3_extended_errcode(db) == SQLITE_IOERR_WRITE) {
    // A write that came up short (SQLite keeps no errno for it): a file-size limit or a disk that filled
    // between the size check and the write.
    msg += " (a write came up short: is the disk full, or a file-size limit reached?)";
  }
  return msg;
}

// The schema, as migrations applied in order at open (meta.schema_version is the last one applied).
// Seeds and float bits are stored as INTEGER (bit patterns), never as REAL, so what is read back is
// exactly what was written. A store newer than this build is refused, never downgraded.
const char* const kMigrations[] = {
    // 1: the first schema (stores written before migrations existed are at 1).
    R"sql(
CREATE TABLE IF NOT EXISTS tasks(
  id TEXT PRIMARY KEY, spec TEXT NOT NULL, seed_key INTEGER NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rounds(
  task TEXT NOT NULL REFERENCES tasks(id), id INTEGER NOT NULL, base_version INTEGER NOT NULL,
  seeds BLOB NOT NULL, opened_ms INTEGER NOT NULL, deadline_ms INTEGER NOT NULL,
  extensions INTEGER NOT NULL, state TEXT NOT NULL, PRIMARY KEY(task, id));
CREATE TABLE IF NOT EXISTS submissions(
  task TEXT NOT NULL, round INTEGER NOT NULL, device TEXT NOT NULL, coeffs BLOB NOT NULL,
  examples INTEGER NOT NULL, base_version INTEGER NOT NULL, weight REAL NOT NULL, stats TEXT NOT NULL,
  received_ms INTEGER NOT NULL, PRIMARY KEY(task, round, device));
CREATE TABLE IF NOT EXISTS log(
  task TEXT NOT NULL, version INTEGER NOT NULL, seed INTEGER NOT NULL, coeff_bits INTEGER NOT NULL,
  round INTEGER NOT NULL, PRIMARY KEY(task, version));
CREATE TABLE IF NOT EXISTS devices(
  id TEXT PRIMARY KEY, secret_sha256 TEXT NOT NULL, created_ms INTEGER NOT NULL, revoked_ms INTEGER);
CREATE TABLE IF NOT EXISTS enrol_tokens(
  token_sha256 TEXT PRIMARY KEY, uses_left INTEGER NOT NULL, expires_ms INTEGER NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints(task TEXT NOT NULL, version INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY(task, version));
CREATE TABLE IF NOT EXISTS device_tokens(device TEXT PRIMARY KEY, token_sha256 TEXT NOT NULL);
)sql",
    // 2: revocation deletes a device's submissions to open rounds (by the open rounds' keys, through the
    // primary key: no per-submission index to maintain on the hot path), and replicas poll revocations.
    R"sql(
CREATE INDEX IF NOT EXISTS rounds_open ON rounds(task, id) WHERE state='open';
CREATE INDEX IF NOT EXISTS devices_by_revocation ON devices(revoked_ms) WHERE revoked_ms IS NOT NULL;
)sql",
};
constexpr int kSchemaVersion = static_cast<int>(sizeof(kMigrations) / sizeof(kMigrations[0]));

class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) { rc_ = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return rc_ == SQLITE_OK; }
  Stmt& text(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& i64(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& u64(int i, uint64_t v) { return i64(i, static_cast<int64_t>(v)); }
  Stmt& real(int i, double v) {
    sqlite3_bind_double(s_, i, v);
    return *this;
  }
  Stmt& blob(int i, const void* p, size_t n) {
    sqlite3_bind_blob(s_, i, p, static_cast<int>(n), SQLITE_TRANSIENT);
    return *this;
  }
  int step() { return sqlite3_step(s_); }
  Status run() {
    if (!ok()) return error("prepare");
    const int rc = step();
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return error("step");
    return Status::ok();
  }
  Status error(const char* what) const { return io_error(std::string("store: ") + what + ": " + sqlite_reason(db_)); }
  int64_t col_i64(int c) const { return sqlite3_column_int64(s_, c); }
  uint64_t col_u64(int c) const { return static_cast<uint64_t>(col_i64(c)); }
  double col_real(int c) const { return sqlite3_column_double(s_, c); }
  std::string col_text(int c) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, c));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s_, c))) : std::string();
  }
  std::string col_blob(int c) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(s_, c));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s_, c))) : std::string();
  }
  bool col_null(int c) const { return sqlite3_column_type(s_, c) == SQLITE_NULL; }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
  int rc_;
};


class SqliteStore final : public Store {
 public:
  explicit SqliteStore(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  ~SqliteStore() override;
  Status migrate();

  bool shared() const override { return false; }
  std::string describe() const override { return "sqlite " + path_; }
  int schema_version() override;
  Status insert_task(const StoredTask& task, const Round& first_round) override;
  Result<std::vector<StoredTask>> load_tasks() override;
  Result<std::vector<Round>> load_rounds(const std::string& task) override;
  Result<std::vector<Submission>> load_submissions(const std::string& task, uint64_t round) override;
  Result<UpdateLog> load_log(const std::string& task) override;
  Result<uint64_t> change_counter() override { return uint64_t{0}; }
  Result<uint64_t> count_submissions(const std::string& task, uint64_t round) override;
  Status put_checkpoint(const std::string& task, uint64_t version, const std::string& data) override;
  Result<std::pair<uint64_t, std::string>> checkpoint_at_or_before(const std::string& task, uint64_t version) override;
  Result<std::vector<SubmissionWrite>> insert_submissions(const std::vector<StoredSubmission>& batch) override;
  Status insert_enrol_token(const std::string& token_sha256, uint32_t uses, int64_t expires_ms, int64_t now_ms) override;
  Status enrol_device(const std::string& token_sha256, const StoredDevice& device, int64_t now_ms) override;
  Status revoke_device(const std::string& id, int64_t now_ms) override;
  Result<std::vector<StoredDevice>> load_devices() override;
  Result<StoredDevice> load_device(const std::string& id) override;
  Result<std::vector<std::string>> revoked_since(int64_t since_ms) override;
  Result<std::pair<uint64_t, uint64_t>> count_devices() override;
  bool try_lead() override { return true; }

 private:
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
  Status in_transaction(const std::function<Status()>& f) override { return transaction(f); }
  // BEGIN IMMEDIATE holds every other writer off until the commit: the round is locked already.
  Result<std::string> lock_round(const std::string& task, uint64_t round) override { return round_state(task, round); }
  Result<std::vector<Submission>> committed_submissions(const std::string& task, uint64_t round) override {
    return load_submissions(task, round);
  }
  Status put_round(const std::string& task, const Round& round) override;
  Status write_applied(const std::string& task, const Round& round, const std::vector<UpdateEntry>& entries,
                       uint64_t first_version, const Round* next) override;
  Result<std::map<std::string, TaskHead>> heads(const std::string* task) override;
  // A round's state name in the store ("" when there is no such round).
  Result<std::string> round_state(const std::string& task, uint64_t round);
  sqlite3* db_;
  std::string path_;
};

}  // namespace

bool is_postgres_url(const std::string& location) {
  return location.rfind("postgresql://", 0) == 0 || location.rfind("postgres://", 0) == 0;
}

Result<std::unique_ptr<Store>> Store::open(const std::string& location, Durability durability) {
  return is_postgres_url(location) ? open_postgres_store(location, durability) : open_sqlite_store(location, durability);
}

Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path, Durability durability) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite_reason(db) : "out of memory";
    sqlite3_close(db);
    return io_error("store " + path + ": " + msg);
  }
  auto store = std::make_unique<SqliteStore>(db, path);
  sqlite3_busy_timeout(db, 5000);
  {
    Stmt wal(db, "PRAGMA journal_mode=WAL");
    if (!wal.ok() || wal.step() != SQLITE_ROW || wal.col_text(0) != "wal")
      return io_error("store " + path + ": cannot switch to WAL mode (is it on a network file system?)");
  }
  sqlite3_exec(db, durability == Durability::kFull ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", nullptr, nullptr, nullptr);
  sqlite3_exec(db, "PRAGMA foreign_keys=ON", nullptr, nullptr, nullptr);
  POCKETLLM_RETURN_IF_ERROR(store->migrate());
  return std::unique_ptr<Store>(std::move(store));
}

Status SqliteStore::migrate() {
  POCKETLLM_RETURN_IF_ERROR(exec("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)"));
  return transaction([&]() -> Status {
    const int have = schema_version();
    if (have < 0) return corrupt("store " + path_ + ": unreadable schema version");
    if (have > kSchemaVersion)
      return unsupported("store " + path_ + ": schema version " + std::to_string(have) + " is newer than this server's " +
                         std::to_string(kSchemaVersion) + " (an older server cannot open it)");
    for (int v = have + 1; v <= kSchemaVersion; ++v) POCKETLLM_RETURN_IF_ERROR(exec(kMigrations[v - 1]));
    if (have == kSchemaVersion) return Status::ok();
    Stmt set(db_, "INSERT INTO meta(key, value) VALUES('schema_version', ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value");
    set.text(1, std::to_string(kSchemaVersion));
    return set.run();
  });
}

int SqliteStore::schema_version() {
  Stmt v(db_, "SELECT value FROM meta WHERE key='schema_version'");
  if (!v.ok()) return -1;
  const int rc = v.step();
  if (rc == SQLITE_DONE) return 0;
  if (rc != SQLITE_ROW) return -1;
  const std::string text = v.col_text(0);
  char* end = nullptr;
  const long n = std::strtol(text.c_str(), &end, 10);
  return (text.empty() || *end != '\0' || n < 0 || n > 1000000) ? -1 : static_cast<int>(n);
}

SqliteStore::~SqliteStore() { sqlite3_close(db_); }

Status SqliteStore::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    sqlite3_free(err);
    return io_error("store: " + sqlite_reason(db_));
  }
  return Status::ok();
}
Status SqliteStore::begin() { return exec("BEGIN IMMEDIATE"); }
Status SqliteStore::commit() {
  Status s = exec("COMMIT");
  if (!s) rollback();
  return s;
}
void SqliteStore::rollback() { (void)exec("ROLLBACK"); }


Status SqliteStore::put_round(const std::string& task, const Round& r) {
  Stmt s(db_,
         "INSERT INTO rounds(task,id,base_version,seeds,opened_ms,deadline_ms,extensions,state) VALUES(?,?,?,?,?,?,?,?) "
         "ON CONFLICT(task,id) DO UPDATE SET deadline_ms=excluded.deadline_ms, extensions=excluded.extensions, state=excluded.state "
         "WHERE rounds.state='open'");
  const std::string seeds = pack(r.seeds);
  s.text(1, task).u64(2, r.id).u64(3, r.base_version).blob(4, seeds.data(), seeds.size()).i64(5, r.opened_ms);
  s.i64(6, r.deadline_ms).i64(7, r.extensions).text(8, round_state_name(r.state));
  return s.run();
}

Status SqliteStore::insert_task(const StoredTask& t, const Round& first) {
  return transaction([&]() -> Status {
    Stmt s(db_, "INSERT INTO tasks(id,spec,seed_key,created_ms) VALUES(?,?,?,?)");
    s.text(1, t.id).text(2, t.spec_json).u64(3, t.seed_key).i64(4, t.created_ms);
    POCKETLLM_RETURN_IF_ERROR(s.run());
    // The sampling key of a private task: a second secret (round seeds are published and reveal the
    // seed key), kept in meta so the schema of version 1 stays as it is.
    Stmt k(db_, "INSERT INTO meta(key, value) VALUES(?, ?)");
    k.text(1, "sampling_key:" + t.id).text(2, std::to_string(t.sampling_key));
    POCKETLLM_RETURN_IF_ERROR(k.run());
    return put_round(t.id, first);
  });
}

Result<std::vector<StoredTask>> SqliteStore::load_tasks() {
  Stmt s(db_, "SELECT id,spec,seed_key,created_ms FROM tasks ORDER BY created_ms, id");
  if (!s.ok()) return s.error("load tasks");
  std::vector<StoredTask> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) out.push_back({s.col_text(0), s.col_text(1), s.col_u64(2), s.col_i64(3)});
  if (rc != SQLITE_DONE) return s.error("load tasks");
  for (StoredTask& t : out) {
    Stmt k(db_, "SELECT value FROM meta WHERE key=?");
    k.text(1, "sampling_key:" + t.id);
    if (k.step() == SQLITE_ROW) t.sampling_key = std::strtoull(k.col_text(0).c_str(), nullptr, 10);
  }
  return out;
}

Result<std::vector<Round>> SqliteStore::load_rounds(const std::string& task) {
  std::vector<Round> rounds;
  {
    Stmt s(db_, "SELECT id,base_version,seeds,opened_ms,deadline_ms,extensions,state FROM rounds WHERE task=? ORDER BY id");
    if (!s.ok()) return s.error("load rounds");
    s.text(1, task);
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) {
      Round r;
      r.id = s.col_u64(0);
      r.base_version = s.col_u64(1);
      if (!unpack(s.col_blob(2), &r.seeds)) return corrupt("store: round " + std::to_string(r.id) + " of task " + task + ": bad seeds");
      r.opened_ms = s.col_i64(3);
      r.deadline_ms = s.col_i64(4);
      r.extensions = static_cast<uint32_t>(s.col_i64(5));
      if (!protocol::parse_round_state(s.col_text(6), &r.state)) return corrupt("store: round " + std::to_string(r.id) + ": bad state");
      rounds.push_back(std::move(r));
    }
    if (rc != SQLITE_DONE) return s.error("load rounds");
  }
  {
    Stmt c(db_, "SELECT round,COUNT(*) FROM submissions WHERE task=? GROUP BY round");
    if (!c.ok()) return c.error("count submissions");
    c.text(1, task);
    int rc;
    while ((rc = c.step()) == SQLITE_ROW) {
      const uint64_t id = c.col_u64(0);
      if (id == 0 || id > rounds.size() || rounds[id - 1].id != id) return corrupt("store: submission for a missing round");
      rounds[id - 1].released_count = static_cast<size_t>(c.col_i64(1));
    }
    if (rc != SQLITE_DONE) return c.error("count submissions");
  }
  if (!rounds.empty() && rounds.back().state == RoundState::kOpen) {  // only the open round's are held in memory
    auto open = load_submissions(task, rounds.back().id);
    if (!open) return open.status();
    for (auto& sub : open.value()) rounds.back().submissions.emplace(sub.device, std::move(sub));
    rounds.back().released_count = 0;
  }
  return rounds;
}

Result<std::vector<Submission>> SqliteStore::load_submissions(const std::string& task, uint64_t round) {
  Stmt s(db_, "SELECT device,coeffs,examples,base_version,weight FROM submissions WHERE task=? AND round=? ORDER BY device");
  if (!s.ok()) return s.error("load submissions");
  s.text(1, task).i64(2, static_cast<int64_t>(round));
  std::vector<Submission> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) {
    Submission sub;
    sub.device = s.col_text(0);
    if (!unpack(s.col_blob(1), &sub.coeffs)) return corrupt("store: bad submission scalars");
    sub.examples = s.col_u64(2);
    sub.base_version = s.col_u64(3);
    sub.weight = s.col_real(4);
    out.push_back(std::move(sub));
  }
  if (rc != SQLITE_DONE) return s.error("load submissions");
  return out;
}

Status SqliteStore::put_checkpoint(const std::string& task, uint64_t version, const std::string& data) {
  Stmt s(db_, "INSERT OR IGNORE INTO checkpoints(task,version,data) VALUES(?,?,?)");
  s.text(1, task).u64(2, version).blob(3, data.data(), data.size());
  return s.run();
}

Result<std::pair<uint64_t, std::string>> SqliteStore::checkpoint_at_or_before(const std::string& task, uint64_t version) {
  Stmt s(db_, "SELECT version,data FROM checkpoints WHERE task=? AND version<=? ORDER BY version DESC LIMIT 1");
  if (!s.ok()) return s.error("load checkpoint");
  s.text(1, task).u64(2, version);
  const int rc = s.step();
  if (rc == SQLITE_DONE) return not_found("no checkpoint of task " + task + " at or before version " + std::to_string(version));
  if (rc != SQLITE_ROW) return s.error("load checkpoint");
  return std::make_pair(s.col_u64(0), s.col_blob(1));
}

Result<UpdateLog> SqliteStore::load_log(const std::string& task) {
  Stmt s(db_, "SELECT version,seed,coeff_bits FROM log WHERE task=? ORDER BY version");
  if (!s.ok()) return s.error("load log");
  s.text(1, task);
  UpdateLog log;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) {
    if (s.col_u64(0) != log.size()) return corrupt("store: log of task " + task + " has a gap at version " + std::to_string(log.size()));
    UpdateEntry e;
    e.seed = s.col_u64(1);
    const auto bits = static_cast<uint32_t>(s.col_i64(2));
    std::memcpy(&e.coeff, &bits, 4);
    POCKETLLM_RETURN_IF_ERROR(log.append(e));
  }
  if (rc != SQLITE_DONE) return s.error("load log");
  return log;
}

Result<std::string> SqliteStore::round_state(const std::string& task, uint64_t round) {
  Stmt s(db_, "SELECT state FROM rounds WHERE task=? AND id=?");
  if (!s.ok()) return s.error("round state");
  s.text(1, task).u64(2, round);
  const int rc = s.step();
  if (rc == SQLITE_DONE) return std::string();
  if (rc != SQLITE_ROW) return s.error("round state");
  return s.col_text(0);
}

Result<std::vector<SubmissionWrite>> SqliteStore::insert_submissions(const std::vector<StoredSubmission>& batch) {
  std::vector<SubmissionWrite> out;
  Status st = transaction([&]() -> Status {
    out.clear();
    std::map<std::pair<std::string, uint64_t>, bool> open;  // (task, round) -> open in the store
    for (const StoredSubmission& x : batch) {
      auto key = std::make_pair(x.task, x.round);
      auto it = open.find(key);
      if (it == open.end()) {
        auto state = round_state(x.task, x.round);
        if (!state) return state.status();
        it = open.emplace(key, state.value() == "open").first;
      }
      if (!it->second) {
        out.push_back(SubmissionWrite::kRoundClosed);
        continue;
      }
      Stmt s(db_,
             "INSERT OR IGNORE INTO submissions(task,round,device,coeffs,examples,base_version,weight,stats,received_ms) "
             "VALUES(?,?,?,?,?,?,?,?,?)");
      const std::string coeffs = pack(x.submission.coeffs);
      s.text(1, x.task).u64(2, x.round).text(3, x.submission.device).blob(4, coeffs.data(), coeffs.size());
      s.u64(5, x.submission.examples).u64(6, x.submission.base_version).real(7, x.submission.weight);
      s.text(8, x.stats_json).i64(9, x.received_ms);
      POCKETLLM_RETURN_IF_ERROR(s.run());
      if (sqlite3_changes(db_) == 1) {
        out.push_back(SubmissionWrite::kWritten);
        continue;
      }
      Stmt e(db_, "SELECT coeffs,examples,base_version FROM submissions WHERE task=? AND round=? AND device=?");
      e.text(1, x.task).u64(2, x.round).text(3, x.submission.device);
      if (e.step() != SQLITE_ROW) return e.error("compare submission");
      const bool same = e.col_blob(0) == coeffs && e.col_u64(1) == x.submission.examples && e.col_u64(2) == x.submission.base_version;
      out.push_back(same ? SubmissionWrite::kSame : SubmissionWrite::kConflict);
    }
    return Status::ok();
  });
  if (!st) return st;
  return out;
}

Status SqliteStore::write_applied(const std::string& task, const Round& round, const std::vector<UpdateEntry>& entries,
                                  uint64_t first_version, const Round* next) {
  for (size_t k = 0; k < entries.size(); ++k) {
    Stmt s(db_, "INSERT INTO log(task,version,seed,coeff_bits,round) VALUES(?,?,?,?,?)");
    uint32_t bits;
    std::memcpy(&bits, &entries[k].coeff, 4);
    s.text(1, task).u64(2, first_version + k).u64(3, entries[k].seed).i64(4, bits).u64(5, round.id);
    POCKETLLM_RETURN_IF_ERROR(s.run());
  }
  POCKETLLM_RETURN_IF_ERROR(put_round(task, round));
  return next ? put_round(task, *next) : Status::ok();
}

Status SqliteStore::insert_enrol_token(const std::string& hash, uint32_t uses, int64_t expires_ms, int64_t now_ms) {
  Stmt s(db_, "INSERT INTO enrol_tokens(token_sha256,uses_left,expires_ms,created_ms) VALUES(?,?,?,?)");
  s.text(1, hash).i64(2, uses).i64(3, expires_ms).i64(4, now_ms);
  return s.run();
}

Status SqliteStore::enrol_device(const std::string& hash, const StoredDevice& d, int64_t now_ms) {
  return transaction([&]() -> Status {
    Stmt u(db_, "UPDATE enrol_tokens SET uses_left=uses_left-1 WHERE token_sha256=? AND uses_left>0 AND expires_ms>?");
    u.text(1, hash).i64(2, now_ms);
    POCKETLLM_RETURN_IF_ERROR(u.run());
    if (sqlite3_changes(db_) != 1) return not_found("enrolment token unknown, used up or expired");
    Stmt s(db_, "INSERT INTO devices(id,secret_sha256,created_ms,revoked_ms) VALUES(?,?,?,NULL)");
    s.text(1, d.id).text(2, d.secret_sha256).i64(3, d.created_ms);
    POCKETLLM_RETURN_IF_ERROR(s.run());
    Stmt t(db_, "INSERT INTO device_tokens(device,token_sha256) VALUES(?,?)");  // which token enrolled it (Sybil caps)
    t.text(1, d.id).text(2, hash);
    return t.run();
  });
}

Status SqliteStore::revoke_device(const std::string& id, int64_t now_ms) {
  return transaction([&]() -> Status {
    Stmt s(db_, "UPDATE devices SET revoked_ms=? WHERE id=? AND revoked_ms IS NULL");
    s.i64(1, now_ms).text(2, id);
    POCKETLLM_RETURN_IF_ERROR(s.run());
    // Its submissions to rounds still open go with it; applied rounds keep what they aggregated.
    Stmt d(db_, "DELETE FROM submissions WHERE device=? AND (task, round) IN (SELECT task, id FROM rounds WHERE state='open')");
    d.text(1, id);
    return d.run();
  });
}

Result<std::vector<StoredDevice>> SqliteStore::load_devices() {
  Stmt s(db_, "SELECT id,secret_sha256,created_ms,revoked_ms,token_sha256 FROM devices LEFT JOIN device_tokens ON device=id");
  if (!s.ok()) return s.error("load devices");
  std::vector<StoredDevice> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW)
    out.push_back({s.col_text(0), s.col_text(1), s.col_i64(2), !s.col_null(3), s.col_null(4) ? std::string() : s.col_text(4)});
  if (rc != SQLITE_DONE) return s.error("load devices");
  return out;
}


Result<StoredDevice> SqliteStore::load_device(const std::string& id) {
  Stmt s(db_, "SELECT id,secret_sha256,created_ms,revoked_ms,token_sha256 FROM devices LEFT JOIN device_tokens ON device=id WHERE id=?");
  if (!s.ok()) return s.error("load device");
  s.text(1, id);
  const int rc = s.step();
  if (rc == SQLITE_DONE) return not_found("no device " + id);
  if (rc != SQLITE_ROW) return s.error("load device");
  return StoredDevice{s.col_text(0), s.col_text(1), s.col_i64(2), !s.col_null(3), s.col_null(4) ? std::string() : s.col_text(4)};
}

Result<std::vector<std::string>> SqliteStore::revoked_since(int64_t since_ms) {
  Stmt s(db_, "SELECT id FROM devices WHERE revoked_ms IS NOT NULL AND revoked_ms>=?");
  if (!s.ok()) return s.error("revoked devices");
  s.i64(1, since_ms);
  std::vector<std::string> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) out.push_back(s.col_text(0));
  if (rc != SQLITE_DONE) return s.error("revoked devices");
  return out;
}

Result<std::pair<uint64_t, uint64_t>> SqliteStore::count_devices() {
  Stmt s(db_, "SELECT COUNT(*) - COUNT(revoked_ms), COUNT(revoked_ms) FROM devices");
  if (!s.ok()) return s.error("count devices");
  if (s.step() != SQLITE_ROW) return s.error("count devices");
  return std::make_pair(s.col_u64(0), s.col_u64(1));
}

Result<std::map<std::string, TaskHead>> SqliteStore::heads(const std::string* task) {
  std::string sql =
      "SELECT t.id, r.id, r.state, r.deadline_ms, r.extensions, r.base_version FROM tasks t LEFT JOIN rounds r ON r.task=t.id "
      "AND r.id=(SELECT MAX(id) FROM rounds WHERE task=t.id)";
  if (task) sql += " WHERE t.id=?";
  Stmt s(db_, sql.c_str());
  if (!s.ok()) return s.error("task heads");
  if (task) s.text(1, *task);
  std::map<std::string, TaskHead> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) {
    TaskHead& h = out[s.col_text(0)];
    if (s.col_null(1)) continue;
    h.round = s.col_u64(1);
    h.state = s.col_text(2);
    h.deadline_ms = s.col_i64(3);
    h.extensions = static_cast<uint32_t>(s.col_i64(4));
    h.base_version = s.col_u64(5);
  }
  if (rc != SQLITE_DONE) return s.error("task heads");
  return out;
}

Result<uint64_t> SqliteStore::count_submissions(const std::string& task, uint64_t round) {
  Stmt s(db_, "SELECT COUNT(*) FROM submissions WHERE task=? AND round=?");
  if (!s.ok()) return s.error("count submissions");
  s.text(1, task).u64(2, round);
  if (s.step() != SQLITE_ROW) return s.error("count submissions");
  return s.col_u64(0);
}

}  // namespace pocketllm::server
