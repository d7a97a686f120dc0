// The PostgreSQL store: the schema of store_sqlite.cpp in PostgreSQL's types, shared by replicas.
// Concurrency (docs/server.md "Replicas"): a submission is written under its round's lock taken shared
// (a transaction-scoped advisory lock keyed by task and round) and only while the round is open; a round
// closes under the same lock taken exclusively (and FOR UPDATE on its row), so no submission can slip in
// between the read of the round's submissions and the write of its outcome, and a round leaves the open
// state exactly once whatever the number of replicas. One replica at a time
// holds the leader's advisory lock and closes rounds; the lock goes with its connection when it dies.
#include <cstring>
#include <map>

#include "pg/connection.h"
#include "pocketllm/server/store.h"
#include "store_codec.h"

namespace pocketllm::server {
namespace {

using pg::Param;

const char* const kMigrations[] = {
    // 1: the first schema.
    R"sql(
CREATE TABLE tasks(
  id TEXT PRIMARY KEY, spec TEXT NOT NULL, seed_key BIGINT NOT NULL, created_ms BIGINT NOT NULL,
  sampling_key BIGINT NOT NULL DEFAULT 0);
CREATE TABLE rounds(
  task TEXT NOT NULL REFERENCES tasks(id), id BIGINT NOT NULL, base_version BIGINT NOT NULL,
  seeds BYTEA NOT NULL, opened_ms BIGINT NOT NULL, deadline_ms BIGINT NOT NULL,
  extensions BIGINT NOT NULL, state TEXT NOT NULL, PRIMARY KEY(task, id));
CREATE TABLE submissions(
  task TEXT NOT NULL, round BIGINT NOT NULL, device TEXT NOT NULL, coeffs BYTEA NOT NULL,
  examples BIGINT NOT NULL, base_version BIGINT NOT NULL, weight DOUBLE PRECISION NOT NULL, stats TEXT NOT NULL,
  received_ms BIGINT NOT NULL, PRIMARY KEY(task, round, device));
CREATE TABLE log(
  task TEXT NOT NULL, version BIGINT NOT NULL, seed BIGINT NOT NULL, coeff_bits BIGINT NOT NULL,
  round BIGINT NOT NULL, PRIMARY KEY(task, version));
CREATE TABLE devices(
  id TEXT PRIMARY KEY, secret_sha256 TEXT NOT NULL, created_ms BIGINT NOT NULL, revoked_ms BIGINT);
CREATE TABLE enrol_tokens(
  token_sha256 TEXT PRIMARY KEY, uses_left BIGINT NOT NULL, expires_ms BIGINT NOT NULL, created_ms BIGINT NOT NULL);
CREATE TABLE checkpoints(task TEXT NOT NULL, version BIGINT NOT NULL, data BYTEA NOT NULL, PRIMARY KEY(task, version));
CREATE TABLE device_tokens(device TEXT PRIMARY KEY, token_sha256 TEXT NOT NULL);
)sql",
    // 2: revocation deletes a device's submissions to open rounds (by the open rounds' keys, through the
    // primary key: no per-submission index to maintain on the hot path), and replicas poll revocations.
    R"sql(
CREATE INDEX rounds_open ON rounds(task, id) WHERE state='open';
CREATE INDEX devices_by_revocation ON devices(revoked_ms) WHERE revoked_ms IS NOT NULL;
)sql",
    // 3: the change counter replicas poll instead of every task's head (advanced by round writes, task
    // creation and revocation, in their transactions).
    R"sql(
INSERT INTO meta(key, value) VALUES('changes', '0') ON CONFLICT(key) DO NOTHING;
)sql",
    // 4: a group commit in one statement (one round trip, one implicit transaction): the batch's round
    // locks taken shared in key order, the items of open rounds inserted, and — only when some were not —
    // the outcome of each of those by its 1-based position: 0 its round is not open, 2 the same submission
    // is already there, 3 a different one is, 4 none is (removed meanwhile). Unlisted positions were written.
    R"sql(
CREATE FUNCTION pllm_insert_submissions(t TEXT[], r BIGINT[], d TEXT[], c BYTEA[], e BIGINT[], bv BIGINT[],
                                        w FLOAT8[], s TEXT[], ms BIGINT[])
RETURNS TABLE(pos BIGINT, outcome INT) LANGUAGE plpgsql AS $$
DECLARE
  wt TEXT[]; wr BIGINT[]; wd TEXT[];
BEGIN
  PERFORM pg_advisory_xact_lock_shared(k.key)
    FROM (SELECT DISTINCT hashtextextended(x.task || '/' || x.id::text, 7272) AS key
          FROM unnest(t, r) AS x(task, id) ORDER BY 1) k;
  WITH ins AS (
    INSERT INTO submissions(task, round, device, coeffs, examples, base_version, weight, stats, received_ms)
    SELECT b.task, b.round, b.device, b.coeffs, b.examples, b.base_version, b.weight, b.stats, b.received_ms
    FROM unnest(t, r, d, c, e, bv, w, s, ms) AS b(task, round, device, coeffs, examples, base_version, weight, stats, received_ms)
    JOIN rounds o ON o.task = b.task AND o.id = b.round AND o.state = 'open'
    ON CONFLICT DO NOTHING
    RETURNING submissions.task, submissions.round, submissions.device)
  SELECT array_agg(ins.task), array_agg(ins.round), array_agg(ins.device) INTO wt, wr, wd FROM ins;
  IF coalesce(cardinality(wt), 0) = cardinality(t) THEN
    RETURN;
  END IF;
  RETURN QUERY
    SELECT b.pos, CASE WHEN o.id IS NULL THEN 0
                       WHEN x.device IS NULL THEN 4
                       WHEN x.coeffs = b.coeffs AND x.examples = b.examples AND x.base_version = b.base_version THEN 2
                       ELSE 3 END
    FROM unnest(t, r, d, c, e, bv) WITH ORDINALITY AS b(task, round, device, coeffs, examples, base_version, pos)
    LEFT JOIN rounds o ON o.task = b.task AND o.id = b.round AND o.state = 'open'
    LEFT JOIN submissions x ON x.task = b.task AND x.round = b.round AND x.device = b.device
    WHERE NOT EXISTS (SELECT 1 FROM unnest(wt, wr, wd) AS v(task, round, device)
                      WHERE v.task = b.task AND v.round = b.round AND v.device = b.device);
END
$$;
)sql",
    // 5: the Sybil cap across replicas. A batch item may carry its device's enrolment token (hashed) and
    // the task's max_per_token: items of a (round, token) with a cap take that pair's lock exclusively
    // (after the round locks, both in key order: no deadlock), count the round's submissions from the
    // token's devices already stored, and beyond the cap are refused (outcome 5) instead of inserted. A
    // device already holding a submission in the round is not counted again. Migration 4's nine-argument
    // function stays beside it: replicas of the previous release keep committing during a rolling upgrade.
    R"sql(
CREATE INDEX device_tokens_by_token ON device_tokens(token_sha256);
CREATE FUNCTION pllm_insert_submissions(t TEXT[], r BIGINT[], d TEXT[], c BYTEA[], e BIGINT[], bv BIGINT[],
                                        w FLOAT8[], s TEXT[], ms BIGINT[], tok TEXT[], cap BIGINT[])
RETURNS TABLE(pos BIGINT, outcome INT) LANGUAGE plpgsql AS $$
DECLARE
  wt TEXT[]; wr BIGINT[]; wd TEXT[]; capped BIGINT[] := '{}';
BEGIN
  PERFORM pg_advisory_xact_lock_shared(k.key)
    FROM (SELECT DISTINCT hashtextextended(x.task || '/' || x.id::text, 7272) AS key
          FROM unnest(t, r) AS x(task, id) ORDER BY 1) k;
  IF EXISTS (SELECT 1 FROM unnest(cap, tok) AS x(cap, tok) WHERE x.cap > 0 AND x.tok <> '') THEN
    PERFORM pg_advisory_xact_lock(k.key)
      FROM (SELECT DISTINCT hashtextextended(x.task || '/' || x.id::text || '/' || x.tok, 7273) AS key
            FROM unnest(t, r, tok, cap) AS x(task, id, tok, cap) WHERE x.cap > 0 AND x.tok <> '' ORDER BY 1) k;
    WITH b AS (
      SELECT u.* FROM unnest(t, r, d, tok, cap) WITH ORDINALITY AS u(task, round, device, tok, cap, pos)
      WHERE u.cap > 0 AND u.tok <> ''
        AND NOT EXISTS (SELECT 1 FROM submissions x WHERE x.task = u.task AND x.round = u.round AND x.device = u.device)),
    held AS (
      SELECT g.task, g.round, g.tok,
             (SELECT count(*) FROM device_tokens dt JOIN submissions x ON x.device = dt.device
              WHERE dt.token_sha256 = g.tok AND x.task = g.task AND x.round = g.round) AS n
      FROM (SELECT DISTINCT b.task, b.round, b.tok FROM b) g),
    ranked AS (
      SELECT b.pos, b.cap, held.n + row_number() OVER (PARTITION BY b.task, b.round, b.tok ORDER BY b.pos) AS nth
      FROM b JOIN held ON held.task = b.task AND held.round = b.round AND held.tok = b.tok)
    SELECT coalesce(array_agg(ranked.pos), '{}') INTO capped FROM ranked WHERE ranked.nth > ranked.cap;
  END IF;
  WITH ins AS (
    INSERT INTO submissions(task, round, device, coeffs, examples, base_version, weight, stats, received_ms)
    SELECT b.task, b.round, b.device, b.coeffs, b.examples, b.base_version, b.weight, b.stats, b.received_ms
    FROM unnest(t, r, d, c, e, bv, w, s, ms) WITH ORDINALITY
         AS b(task, round, device, coeffs, examples, base_version, weight, stats, received_ms, pos)
    JOIN rounds o ON o.task = b.task AND o.id = b.round AND o.state = 'open'
    WHERE NOT (b.pos = ANY(capped))
    ON CONFLICT DO NOTHING
    RETURNING submissions.task, submissions.round, submissions.device)
  SELECT array_agg(ins.task), array_agg(ins.round), array_agg(ins.device) INTO wt, wr, wd FROM ins;
  IF coalesce(cardinality(wt), 0) = cardinality(t) THEN
    RETURN;
  END IF;
  RETURN QUERY
    SELECT b.pos, CASE WHEN o.id IS NULL THEN 0
                       WHEN b.pos = ANY(capped) THEN 5
                       WHEN x.device IS NULL THEN 4
                       WHEN x.coeffs = b.coeffs AND x.examples = b.examples AND x.base_version = b.base_version THEN 2
                       ELSE 3 END
    FROM unnest(t, r, d, c, e, bv) WITH ORDINALITY AS b(task, round, device, coeffs, examples, base_version, pos)
    LEFT JOIN rounds o ON o.task = b.task AND o.id = b.round AND o.state = 'open'
    LEFT JOIN submissions x ON x.task = b.task AND x.round = b.round AND x.device = b.device
    WHERE NOT EXISTS (SELECT 1 FROM unnest(wt, wr, wd) AS v(task, round, device)
                      WHERE v.task = b.task AND v.round = b.round AND v.device = b.device);
END
$$;
)sql",
};
constexpr int kSchemaVersion = static_cast<int>(sizeof(kMigrations) / sizeof(kMigrations[0]));
constexpr int64_t kMigrationLock = 0x706c6c6d0001;  // "pllm" + 1: migrations, one replica at a time
constexpr int64_t kLeaderLock = 0x706c6c6d0002;     // the replica that closes rounds


class PostgresStore final : public Store {
 public:
  PostgresStore(std::unique_ptr<pg::Connection> c, Durability d) : c_(std::move(c)), durability_(d) {}
  Status setup();
  Status migrate();

  bool shared() const override { return true; }
  std::string describe() const override { return "postgresql " + c_->redacted(); }
  int schema_version() override;
  Status insert_task(const StoredTask& task, const Round& first_round) override;
  Result<std::vector<StoredTask>> load_tasks() override;
  Result<std::vector<Round>> load_rounds(const std::string& task) override;
  Result<std::vector<Submission>> load_submissions(const std::string& task, uint64_t round) override;
  Result<UpdateLog> load_log(const std::string& task) override;
  Result<uint64_t> change_counter() override;
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
  bool try_lead() override;

 private:
  // Reconnects first when the connection broke (a PostgreSQL restart): session state is set again.
  Status connected();
  Result<pg::ResultSet> q(const std::string& sql, const std::vector<Param>& params = {}) { return c_->exec(sql, params); }
  template <class F>
  Status transaction(F f) {
    POCKETLLM_RETURN_IF_ERROR(connected());
    auto b = q("BEGIN");
    if (!b) return b.status();
    Status s = f();
    if (!s) {
      (void)q("ROLLBACK");
      return s;
    }
    auto c = q("COMMIT");
    if (!c) {
      (void)q("ROLLBACK");
      return c.status();
    }
    return Status::ok();
  }
  Status in_transaction(const std::function<Status()>& f) override { return transaction(f); }
  // The round lock taken exclusively (it waits for the submissions being written to the round), then
  // the round's row FOR UPDATE.
  Result<std::string> lock_round(const std::string& task, uint64_t round) override;
  Result<std::vector<Submission>> committed_submissions(const std::string& task, uint64_t round) override {
    return submissions_of(task, round);
  }
  Status put_round(const std::string& task, const Round& round) override;
  Status write_applied(const std::string& task, const Round& round, const std::vector<UpdateEntry>& entries,
                       uint64_t first_version, const Round* next) override;
  Status count_change();
  Result<std::map<std::string, TaskHead>> heads(const std::string* task) override;
  Result<std::vector<Submission>> submissions_of(const std::string& task, uint64_t round);

  std::unique_ptr<pg::Connection> c_;
  Durability durability_;
  bool leader_ = false;
};

Status PostgresStore::setup() {
  // kNormal: a commit returns before its WAL is flushed (a crash of PostgreSQL may lose the last
  // moments; a crash of this server loses nothing) — the analogue of SQLite's synchronous=NORMAL.
  auto s = q(durability_ == Durability::kFull ? "SET synchronous_commit = on" : "SET synchronous_commit = off");
  if (!s) return s.status();
  auto quiet = q("SET client_min_messages = warning");
  return quiet ? Status::ok() : quiet.status();
}

Status PostgresStore::connected() {
  bool reconnected = false;
  if (!c_->ensure(&reconnected)) return io_error("store " + c_->redacted() + ": cannot reconnect");
  if (reconnected) {
    leader_ = false;  // the advisory lock went with the old session
    return setup();
  }
  return Status::ok();
}

Status PostgresStore::migrate() {
  // One replica at a time (the others wait on the lock, then find the schema current).
  return transaction([&]() -> Status {
    auto lock = q("SELECT pg_advisory_xact_lock($1)", {pg::i64(kMigrationLock)});
    if (!lock) return lock.status();
    POCKETLLM_RETURN_IF_ERROR(c_->exec_script("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)"));
    const int have = schema_version();
    if (have < 0) return corrupt("store " + c_->redacted() + ": unreadable schema version");
    if (have > kSchemaVersion)
      return unsupported("store " + c_->redacted() + ": schema version " + std::to_string(have) + " is newer than this server's " +
                         std::to_string(kSchemaVersion) + " (an older server cannot open it)");
    for (int v = have + 1; v <= kSchemaVersion; ++v) POCKETLLM_RETURN_IF_ERROR(c_->exec_script(kMigrations[v - 1]));
    if (have == kSchemaVersion) return Status::ok();
    auto set = q("INSERT INTO meta(key, value) VALUES('schema_version', $1) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                 {std::to_string(kSchemaVersion)});
    return set ? Status::ok() : set.status();
  });
}

int PostgresStore::schema_version() {
  auto r = q("SELECT value FROM meta WHERE key='schema_version'");
  if (!r) return -1;
  if (r->rows() == 0) return 0;
  const std::string text = r->text(0, 0);
  char* end = nullptr;
  const long n = std::strtol(text.c_str(), &end, 10);
  return (text.empty() || *end != '\0' || n < 0 || n > 1000000) ? -1 : static_cast<int>(n);
}

bool PostgresStore::try_lead() {
  if (!connected()) return false;
  if (leader_) return true;
  auto r = q("SELECT pg_try_advisory_lock($1)", {pg::i64(kLeaderLock)});
  leader_ = r && r->rows() == 1 && r->text(0, 0) == "t";
  return leader_;
}

Status PostgresStore::put_round(const std::string& task, const Round& r) {
  auto s = q("INSERT INTO rounds(task,id,base_version,seeds,opened_ms,deadline_ms,extensions,state) VALUES($1,$2,$3,$4,$5,$6,$7,$8) "
             "ON CONFLICT(task,id) DO UPDATE SET deadline_ms=excluded.deadline_ms, extensions=excluded.extensions, "
             "state=excluded.state WHERE rounds.state='open'",
             {task, pg::u64(r.id), pg::u64(r.base_version), pg::bytea(pack(r.seeds)), pg::i64(r.opened_ms), pg::i64(r.deadline_ms),
              pg::i64(r.extensions), std::string(round_state_name(r.state))});
  if (!s) return s.status();
  return count_change();
}

Status PostgresStore::count_change() {
  auto s = c_->exec_prepared("count_change", "UPDATE meta SET value=(value::bigint+1)::text WHERE key='changes'", {});
  return s ? Status::ok() : s.status();
}

Result<uint64_t> PostgresStore::change_counter() {
  POCKETLLM_RETURN_IF_ERROR(connected());
  auto r = c_->exec_prepared("changes", "SELECT value::bigint FROM meta WHERE key='changes'", {});
  if (!r) return r.status();
  if (r->rows() != 1) return corrupt("store: no change counter");
  return r->u64(0, 0);
}

Status PostgresStore::insert_task(const StoredTask& t, const Round& first) {
  return transaction([&]() -> Status {
    auto s = q("INSERT INTO tasks(id,spec,seed_key,created_ms,sampling_key) VALUES($1,$2,$3,$4,$5)",
               {t.id, t.spec_json, pg::u64(t.seed_key), pg::i64(t.created_ms), pg::u64(t.sampling_key)});
    if (!s) return s.status();
    return put_round(t.id, first);
  });
}

Result<std::vector<StoredTask>> PostgresStore::load_tasks() {
  POCKETLLM_RETURN_IF_ERROR(connected());
  auto r = q("SELECT id,spec,seed_key,created_ms,sampling_key FROM tasks ORDER BY created_ms, id");
  if (!r) return r.status();
  std::vector<StoredTask> out;
  for (int i = 0; i < r->rows(); ++i) out.push_back({r->text(i, 0), r->text(i, 1), r->u64(i, 2), r->i64(i, 3), r->u64(i, 4)});
  return out;
}

Result<std::vector<Round>> PostgresStore::load_rounds(const std::string& task) {
  POCKETLLM_RETURN_IF_ERROR(connected());
  // One snapshot of the rounds and the open round's submissions.
  std::vector<Round> rounds;
  Status st = transaction([&]() -> Status {
    rounds.clear();
    auto tx = q("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ");
    if (!tx) return tx.status();
    auto r = q("SELECT id,base_version,seeds,opened_ms,deadline_ms,extensions,state FROM rounds WHERE task=$1 ORDER BY id", {task});
    if (!r) return r.status();
    for (int i = 0; i < r->rows(); ++i) {
      Round x;
      x.id = r->u64(i, 0);
      x.base_version = r->u64(i, 1);
      auto seeds = r->bytea(i, 2);
      if (!seeds || !unpack(seeds.value(), &x.seeds)) return corrupt("store: round " + std::to_string(x.id) + " of task " + task + ": bad seeds");
      x.opened_ms = r->i64(i, 3);
      x.deadline_ms = r->i64(i, 4);
      x.extensions = static_cast<uint32_t>(r->i64(i, 5));
      if (!protocol::parse_round_state(r->text(i, 6), &x.state)) return corrupt("store: round " + std::to_string(x.id) + ": bad state");
      rounds.push_back(std::move(x));
    }
    auto c = q("SELECT round,COUNT(*) FROM submissions WHERE task=$1 GROUP BY round", {task});
    if (!c) return c.status();
    for (int i = 0; i < c->rows(); ++i) {
      const uint64_t id = c->u64(i, 0);
      if (id == 0 || id > rounds.size() || rounds[id - 1].id != id) return corrupt("store: submission for a missing round");
      rounds[id - 1].released_count = static_cast<size_t>(c->i64(i, 1));
    }
    if (!rounds.empty() && rounds.back().state == RoundState::kOpen) {
      auto open = submissions_of(task, rounds.back().id);
      if (!open) return open.status();
      for (auto& sub : open.value()) rounds.back().submissions.emplace(sub.device, std::move(sub));
      rounds.back().released_count = 0;
    }
    return Status::ok();
  });
  if (!st) return st;
  return rounds;
}

Result<std::vector<Submission>> PostgresStore::submissions_of(const std::string& task, uint64_t round) {
  auto r = q("SELECT device,coeffs,examples,base_version,weight FROM submissions WHERE task=$1 AND round=$2 ORDER BY device",
             {task, pg::u64(round)});
  if (!r) return r.status();
  std::vector<Submission> out;
  out.reserve(static_cast<size_t>(r->rows()));
  for (int i = 0; i < r->rows(); ++i) {
    Submission sub;
    sub.device = r->text(i, 0);
    auto coeffs = r->bytea(i, 1);
    if (!coeffs || !unpack(coeffs.value(), &sub.coeffs)) return corrupt("store: bad submission scalars");
    sub.examples = r->u64(i, 2);
    sub.base_version = r->u64(i, 3);
    sub.weight = r->f64(i, 4);
    out.push_back(std::move(sub));
  }
  return out;
}

Result<std::vector<Submission>> PostgresStore::load_submissions(const std::string& task, uint64_t round) {
  POCKETLLM_RETURN_IF_ERROR(connected());
  return submissions_of(task, round);
}

Status PostgresStore::put_checkpoint(const std::string& task, uint64_t version, const std::string& data) {
  POCKETLLM_RETURN_IF_ERROR(connected());
  // Replicas may build the same checkpoint: the first one stays (they are equal bytes).
  auto s = q("INSERT INTO checkpoints(task,version,data) VALUES($1,$2,$3) ON CONFLICT DO NOTHING", {task, pg::u64(version), pg::bytea(data)});
  return s ? Status::ok() : s.status();
}

Result<std::pair<uint64_t, std::string>> PostgresStore::checkpoint_at_or_before(const std::string& task, uint64_t version) {
  POCKETLLM_RETURN_IF_ERROR(connected());
  auto r = q("SELECT version,data FROM checkpoints WHERE task=$1 AND version<=$2 ORDER BY version DESC LIMIT 1", {task, pg::u64(version)});
  if (!r) return r.status();
  if (r->rows() == 0) return not_found("no checkpoint of task " + task + " at or before version " + std::to_string(version));
  auto data = r->bytea(0, 1);
  if (!data) return data.status();
  return std::make_pair(r->u64(0, 0), std::move(data.value()));
}

Result<UpdateLog> PostgresStore::load_log(const std::string& task) {
  POCKETLLM_RETURN_IF_ERROR(connected());
  auto r = q("SELECT version,seed,coeff_bits FROM log WHERE task=$1 ORDER BY version", {task});
  if (!r) return r.status();
  UpdateLog log;
  for (int i = 0; i < r->rows(); ++i) {
    if (r->u64(i, 0) != log.size()) return corrupt("store: log of task " + task + " has a gap at version " + std::to_string(log.size()));
    UpdateEntry e;
    e.seed = r->u64(i, 1);
    const auto bits = static_cast<uint32_t>(r->i64(i, 2));
    std::memcpy(&e.coeff, &bits, 4);
    POCKETLLM_RETURN_IF_ERROR(log.append(e));
  }
  return log;
}

Result<std::map<std::string, TaskHead>> PostgresStore::heads(const std::string* task) {
  POCKETLLM_RETURN_IF_ERROR(connected());
  // One index probe per task (the latest round), whatever the number of rounds.
  std::string sql =
      "SELECT t.id, r.id, r.state, r.deadline_ms, r.extensions, r.base_version FROM tasks t LEFT JOIN LATERAL "
      "(SELECT id, state, deadline_ms, extensions, base_version FROM rounds WHERE task=t.id ORDER BY id DESC LIMIT 1) r ON true";
  std::vector<Param> params;
  if (task) {
    sql += " WHERE t.id=$1";
    params.push_back(*task);
  }
  auto r = q(sql, params);
  if (!r) return r.status();
  std::map<std::string, TaskHead> out;
  for (int i = 0; i < r->rows(); ++i) {
    TaskHead& h = out[r->text(i, 0)];
    if (r->null(i, 1)) continue;
    h.round = r->u64(i, 1);
    h.state = r->text(i, 2);
    h.deadline_ms = r->i64(i, 3);
    h.extensions = static_cast<uint32_t>(r->i64(i, 4));
    h.base_version = r->u64(i, 5);
  }
  return out;
}

Result<uint64_t> PostgresStore::count_submissions(const std::string& task, uint64_t round) {
  POCKETLLM_RETURN_IF_ERROR(connected());
  auto r = q("SELECT COUNT(*) FROM submissions WHERE task=$1 AND round=$2", {task, pg::u64(round)});
  if (!r) return r.status();
  return r->u64(0, 0);
}

Result<std::vector<SubmissionWrite>> PostgresStore::insert_submissions(const std::vector<StoredSubmission>& batch) {
  // One statement (migration 5's function): the round locks shared — a closing server takes them
  // exclusively, so it waits for this commit and this waits for a closing that started first, then finds
  // the round closed — the Sybil cap of capped items, the insert of the items of open rounds, and the
  // outcomes of the others. A single round trip: the commit cycle, not CPU, bounds a replica's
  // throughput (bench/run_cluster_bench.sh).
  std::vector<SubmissionWrite> out(batch.size(), SubmissionWrite::kWritten);
  if (batch.empty()) return out;
  POCKETLLM_RETURN_IF_ERROR(connected());
  std::vector<std::string> cols[11];
  for (auto& c : cols) c.reserve(batch.size());
  for (const StoredSubmission& x : batch) {
    cols[0].push_back(x.task);
    cols[1].push_back(*pg::u64(x.round));
    cols[2].push_back(x.submission.device);
    cols[3].push_back(*pg::bytea(pack(x.submission.coeffs)));
    cols[4].push_back(*pg::u64(x.submission.examples));
    cols[5].push_back(*pg::u64(x.submission.base_version));
    cols[6].push_back(*pg::f64(x.submission.weight));
    cols[7].push_back(x.stats_json);
    cols[8].push_back(*pg::i64(x.received_ms));
    cols[9].push_back(x.token_sha256);
    cols[10].push_back(*pg::u64(x.max_per_token));
  }
  std::vector<Param> params;
  for (auto& c : cols) params.push_back(pg::array_literal(c));
  auto r = c_->exec_prepared("insert_submissions", "SELECT pos, outcome FROM pllm_insert_submissions($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                             params);
  if (!r) return r.status();
  for (int i = 0; i < r->rows(); ++i) {
    const uint64_t pos = r->u64(i, 0);
    if (pos < 1 || pos > batch.size()) return corrupt("store: an outcome for position " + std::to_string(pos) + " of a batch of " + std::to_string(batch.size()));
    switch (r->u64(i, 1)) {
      case 0: out[pos - 1] = SubmissionWrite::kRoundClosed; break;
      case 2: out[pos - 1] = SubmissionWrite::kSame; break;
      case 3: out[pos - 1] = SubmissionWrite::kConflict; break;
      case 5: out[pos - 1] = SubmissionWrite::kTokenCap; break;
      default: return io_error("store: a submission neither written nor present");
    }
  }
  return out;
}

Result<std::string> PostgresStore::lock_round(const std::string& task, uint64_t round) {
  // Exclusive round lock first (waits for the submissions being written to it), then the row.
  auto l = c_->exec_prepared("lock_round", "SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2::bigint::text, 7272))",
                             {task, pg::u64(round)});
  if (!l) return l.status();
  auto r = q("SELECT state FROM rounds WHERE task=$1 AND id=$2 FOR UPDATE", {task, pg::u64(round)});
  if (!r) return r.status();
  return r->rows() == 1 ? r->text(0, 0) : std::string();
}

Status PostgresStore::write_applied(const std::string& task, const Round& round, const std::vector<UpdateEntry>& entries,
                                    uint64_t first_version, const Round* next) {
  if (!entries.empty()) {
    std::string sql = "INSERT INTO log(task,version,seed,coeff_bits,round) VALUES ";
    std::vector<Param> params;
    for (size_t k = 0; k < entries.size(); ++k) {
      uint32_t bits;
      std::memcpy(&bits, &entries[k].coeff, 4);
      const size_t b = params.size();
      sql += (k ? ",(" : "(");
      for (int c = 1; c <= 5; ++c) sql += "$" + std::to_string(b + c) + (c < 5 ? "," : ")");
      params.insert(params.end(), {task, pg::u64(first_version + k), pg::u64(entries[k].seed), pg::i64(bits), pg::u64(round.id)});
    }
    auto s = q(sql, params);
    if (!s) return s.status();
  }
  POCKETLLM_RETURN_IF_ERROR(put_round(task, round));
  return next ? put_round(task, *next) : Status::ok();
}

Status PostgresStore::insert_enrol_token(const std::string& hash, uint32_t uses, int64_t expires_ms, int64_t now_ms) {
  POCKETLLM_RETURN_IF_ERROR(connected());
  auto s = q("INSERT INTO enrol_tokens(token_sha256,uses_left,expires_ms,created_ms) VALUES($1,$2,$3,$4)",
             {hash, pg::i64(uses), pg::i64(expires_ms), pg::i64(now_ms)});
  return s ? Status::ok() : s.status();
}

Status PostgresStore::enrol_device(const std::string& hash, const StoredDevice& d, int64_t now_ms) {
  return transaction([&]() -> Status {
    auto u = q("UPDATE enrol_tokens SET uses_left=uses_left-1 WHERE token_sha256=$1 AND uses_left>0 AND expires_ms>$2", {hash, pg::i64(now_ms)});
    if (!u) return u.status();
    if (u->affected() != 1) return not_found("enrolment token unknown, used up or expired");
    auto s = q("INSERT INTO devices(id,secret_sha256,created_ms,revoked_ms) VALUES($1,$2,$3,NULL)", {d.id, d.secret_sha256, pg::i64(d.created_ms)});
    if (!s) return s.status();
    auto t = q("INSERT INTO device_tokens(device,token_sha256) VALUES($1,$2)", {d.id, hash});
    return t ? Status::ok() : t.status();
  });
}

Status PostgresStore::revoke_device(const std::string& id, int64_t now_ms) {
  return transaction([&]() -> Status {
    auto s = q("UPDATE devices SET revoked_ms=$1 WHERE id=$2 AND revoked_ms IS NULL", {pg::i64(now_ms), id});
    if (!s) return s.status();
    POCKETLLM_RETURN_IF_ERROR(count_change());
    auto d = q("DELETE FROM submissions WHERE device=$1 AND (task, round) IN (SELECT task, id FROM rounds WHERE state='open')", {id});
    return d ? Status::ok() : d.status();
  });
}

Result<std::vector<StoredDevice>> PostgresStore::load_devices() {
  POCKETLLM_RETURN_IF_ERROR(connected());
  auto r = q("SELECT id,secret_sha256,created_ms,revoked_ms,token_sha256 FROM devices LEFT JOIN device_tokens ON device=id");
  if (!r) return r.status();
  std::vector<StoredDevice> out;
  for (int i = 0; i < r->rows(); ++i)
    out.push_back({r->text(i, 0), r->text(i, 1), r->i64(i, 2), !r->null(i, 3), r->null(i, 4) ? std::string() : r->text(i, 4)});
  return out;
}

Result<StoredDevice> PostgresStore::load_device(const std::string& id) {
  POCKETLLM_RETURN_IF_ERROR(connected());
  auto r = q("SELECT id,secret_sha256,created_ms,revoked_ms,token_sha256 FROM devices LEFT JOIN device_tokens ON device=id WHERE id=$1", {id});
  if (!r) return r.status();
  if (r->rows() == 0) return not_found("no device " + id);
  return StoredDevice{r->text(0, 0), r->text(0, 1), r->i64(0, 2), !r->null(0, 3), r->null(0, 4) ? std::string() : r->text(0, 4)};
}

Result<std::vector<std::string>> PostgresStore::revoked_since(int64_t since_ms) {
  POCKETLLM_RETURN_IF_ERROR(connected());
  auto r = q("SELECT id FROM devices WHERE revoked_ms IS NOT NULL AND revoked_ms>=$1", {pg::i64(since_ms)});
  if (!r) return r.status();
  std::vector<std::string> out;
  for (int i = 0; i < r->rows(); ++i) out.push_back(r->text(i, 0));
  return out;
}

Result<std::pair<uint64_t, uint64_t>> PostgresStore::count_devices() {
  POCKETLLM_RETURN_IF_ERROR(connected());
  auto r = q("SELECT COUNT(*) - COUNT(revoked_ms), COUNT(revoked_ms) FROM devices");
  if (!r) return r.status();
  return std::make_pair(r->u64(0, 0), r->u64(0, 1));
}

}  // namespace

Result<std::unique_ptr<Store>> open_postgres_store(const std::string& url, Durability durability) {
  auto c = pg::Connection::open(url);
  if (!c) return c.status();
  auto store = std::make_unique<PostgresStore>(std::move(c.value()), durability);
  POCKETLLM_RETURN_IF_ERROR(store->setup());
  POCKETLLM_RETURN_IF_ERROR(store->migrate());
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace pocketllm::server
