#include "pocketllm/server/store.h"

#include <sqlite3.h>

#include <cstdlib>
#include <cstring>

namespace pocketllm::server {
namespace {

// Schema version 1. Seeds and float bits are stored as INTEGER (bit patterns), never as REAL, so what
// is read back is exactly what was written.
const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
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
INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', '1');
)sql";

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
  Status error(const char* what) const { return io_error(std::string("store: ") + what + ": " + sqlite3_errmsg(db_)); }
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

template <class T>
std::string pack(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}
template <class T>
bool unpack(const std::string& b, std::vector<T>* out) {
  if (b.size() % sizeof(T) != 0) return false;
  out->resize(b.size() / sizeof(T));
  if (!b.empty()) std::memcpy(out->data(), b.data(), b.size());
  return true;
}

}  // namespace

Result<std::unique_ptr<Store>> Store::open(const std::string& path, Durability durability) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return io_error("store " + path + ": " + msg);
  }
  std::unique_ptr<Store> store(new Store(db));
  sqlite3_busy_timeout(db, 5000);
  {
    Stmt wal(db, "PRAGMA journal_mode=WAL");
    if (!wal.ok() || wal.step() != SQLITE_ROW || wal.col_text(0) != "wal")
      return io_error("store " + path + ": cannot switch to WAL mode (is it on a network file system?)");
  }
  POCKETLLM_RETURN_IF_ERROR(store->exec(durability == Durability::kFull ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"));
  POCKETLLM_RETURN_IF_ERROR(store->exec("PRAGMA foreign_keys=ON"));
  POCKETLLM_RETURN_IF_ERROR(store->exec(kSchema));
  Stmt v(db, "SELECT value FROM meta WHERE key='schema_version'");
  if (!v.ok() || v.step() != SQLITE_ROW || v.col_text(0) != "1")
    return unsupported("store " + path + ": schema version " + (v.ok() ? v.col_text(0) : "?") + " is not 1");
  return store;
}

Store::~Store() { sqlite3_close(db_); }

Status Store::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    return io_error("store: " + msg);
  }
  return Status::ok();
}
Status Store::begin() { return exec("BEGIN IMMEDIATE"); }
Status Store::commit() {
  Status s = exec("COMMIT");
  if (!s) rollback();
  return s;
}
void Store::rollback() { (void)exec("ROLLBACK"); }


Status Store::put_round(const std::string& task, const Round& r) {
  Stmt s(db_,
         "INSERT INTO rounds(task,id,base_version,seeds,opened_ms,deadline_ms,extensions,state) VALUES(?,?,?,?,?,?,?,?) "
         "ON CONFLICT(task,id) DO UPDATE SET deadline_ms=excluded.deadline_ms, extensions=excluded.extensions, state=excluded.state");
  const std::string seeds = pack(r.seeds);
  s.text(1, task).u64(2, r.id).u64(3, r.base_version).blob(4, seeds.data(), seeds.size()).i64(5, r.opened_ms);
  s.i64(6, r.deadline_ms).i64(7, r.extensions).text(8, round_state_name(r.state));
  return s.run();
}

Status Store::insert_task(const StoredTask& t, const Round& first) {
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

Result<std::vector<StoredTask>> Store::load_tasks() {
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

Result<std::vector<Round>> Store::load_rounds(const std::string& task) {
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

Result<std::vector<Submission>> Store::load_submissions(const std::string& task, uint64_t round) {
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

Status Store::put_checkpoint(const std::string& task, uint64_t version, const std::string& data) {
  Stmt s(db_, "INSERT OR REPLACE INTO checkpoints(task,version,data) VALUES(?,?,?)");
  s.text(1, task).u64(2, version).blob(3, data.data(), data.size());
  return s.run();
}

Result<std::pair<uint64_t, std::string>> Store::checkpoint_at_or_before(const std::string& task, uint64_t version) {
  Stmt s(db_, "SELECT version,data FROM checkpoints WHERE task=? AND version<=? ORDER BY version DESC LIMIT 1");
  if (!s.ok()) return s.error("load checkpoint");
  s.text(1, task).u64(2, version);
  const int rc = s.step();
  if (rc == SQLITE_DONE) return not_found("no checkpoint of task " + task + " at or before version " + std::to_string(version));
  if (rc != SQLITE_ROW) return s.error("load checkpoint");
  return std::make_pair(s.col_u64(0), s.col_blob(1));
}

Result<UpdateLog> Store::load_log(const std::string& task) {
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

Status Store::insert_submissions(const std::vector<StoredSubmission>& batch) {
  return transaction([&]() -> Status {
    for (const StoredSubmission& x : batch) {
    Stmt s(db_,
           "INSERT INTO submissions(task,round,device,coeffs,examples,base_version,weight,stats,received_ms) "
           "VALUES(?,?,?,?,?,?,?,?,?)");
    const std::string coeffs = pack(x.submission.coeffs);
    s.text(1, x.task).u64(2, x.round).text(3, x.submission.device).blob(4, coeffs.data(), coeffs.size());
    s.u64(5, x.submission.examples).u64(6, x.submission.base_version).real(7, x.submission.weight);
    s.text(8, x.stats_json).i64(9, x.received_ms);
    POCKETLLM_RETURN_IF_ERROR(s.run());
    }
    return Status::ok();
  });
}

Status Store::update_round(const std::string& task, const Round& round, const Round* next) {
  return transaction([&]() -> Status {
    POCKETLLM_RETURN_IF_ERROR(put_round(task, round));
    return next ? put_round(task, *next) : Status::ok();
  });
}

Status Store::apply_round(const std::string& task, const Round& round, const std::vector<UpdateEntry>& entries,
                          uint64_t first_version, const Round* next) {
  return transaction([&]() -> Status {
    for (size_t k = 0; k < entries.size(); ++k) {
      Stmt s(db_, "INSERT INTO log(task,version,seed,coeff_bits,round) VALUES(?,?,?,?,?)");
      uint32_t bits;
      std::memcpy(&bits, &entries[k].coeff, 4);
      s.text(1, task).u64(2, first_version + k).u64(3, entries[k].seed).i64(4, bits).u64(5, round.id);
      POCKETLLM_RETURN_IF_ERROR(s.run());
    }
    POCKETLLM_RETURN_IF_ERROR(put_round(task, round));
    return next ? put_round(task, *next) : Status::ok();
  });
}

Status Store::insert_enrol_token(const std::string& hash, uint32_t uses, int64_t expires_ms, int64_t now_ms) {
  Stmt s(db_, "INSERT INTO enrol_tokens(token_sha256,uses_left,expires_ms,created_ms) VALUES(?,?,?,?)");
  s.text(1, hash).i64(2, uses).i64(3, expires_ms).i64(4, now_ms);
  return s.run();
}

Status Store::enrol_device(const std::string& hash, const StoredDevice& d, int64_t now_ms) {
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

Status Store::revoke_device(const std::string& id, int64_t now_ms) {
  return transaction([&]() -> Status {
    Stmt s(db_, "UPDATE devices SET revoked_ms=? WHERE id=? AND revoked_ms IS NULL");
    s.i64(1, now_ms).text(2, id);
    POCKETLLM_RETURN_IF_ERROR(s.run());
    // Its submissions to rounds still open go with it; applied rounds keep what they aggregated.
    Stmt d(db_, "DELETE FROM submissions WHERE device=? AND EXISTS (SELECT 1 FROM rounds WHERE rounds.task=submissions.task "
                "AND rounds.id=submissions.round AND rounds.state='open')");
    d.text(1, id);
    return d.run();
  });
}

Result<std::vector<StoredDevice>> Store::load_devices() {
  Stmt s(db_, "SELECT id,secret_sha256,created_ms,revoked_ms,token_sha256 FROM devices LEFT JOIN device_tokens ON device=id");
  if (!s.ok()) return s.error("load devices");
  std::vector<StoredDevice> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW)
    out.push_back({s.col_text(0), s.col_text(1), s.col_i64(2), !s.col_null(3), s.col_null(4) ? std::string() : s.col_text(4)});
  if (rc != SQLITE_DONE) return s.error("load devices");
  return out;
}

}  // namespace pocketllm::server
