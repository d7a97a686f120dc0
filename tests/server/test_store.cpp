// The store contract both backends keep (SQLite always; PostgreSQL too when the PostgreSQL suite runs
// this binary): schema migrations, submissions written only into open rounds with one outcome each, a
// round that leaves the open state once, and the locked close.
#include <catch2/catch.hpp>
#include <sqlite3.h>

#include "service_fixture.h"

using namespace pocketllm;
using namespace pocketllm::server;
using namespace pocketllm::server::test;

namespace {

struct OpenStore {
  std::string dir = temp_dir("store");
  TestStore where{dir};
  std::unique_ptr<Store> s;
  OpenStore() {
    auto opened = Store::open(where.location, Durability::kNormal);
    if (!opened) throw std::runtime_error(opened.status().to_string());
    s = std::move(opened.value());
  }
  ~OpenStore() {
    s.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

Round open_round(uint64_t id, uint64_t base) {
  Round r;
  r.id = id;
  r.base_version = base;
  r.seeds = {11 * id, 13 * id};
  r.opened_ms = 1000;
  r.deadline_ms = 2000;
  return r;
}

StoredSubmission sub(const std::string& device, uint64_t round, float c) {
  StoredSubmission x;
  x.task = "t";
  x.round = round;
  x.submission.device = device;
  x.submission.coeffs = {c, -c};
  x.submission.examples = 2;
  x.stats_json = "{}";
  x.received_ms = 1500;
  return x;
}

}  // namespace

TEST_CASE("store: a submission is written only into an open round, with one outcome per submission", "[server][store]") {
  OpenStore o;
  REQUIRE(o.s->insert_task({"t", "{}", 7, 1000, 0}, open_round(1, 0)));
  auto w = o.s->insert_submissions({sub("a", 1, 0.5f), sub("b", 1, 0.25f), sub("c", 9, 1.0f)});
  REQUIRE(w);
  CHECK(w.value() == std::vector<SubmissionWrite>{SubmissionWrite::kWritten, SubmissionWrite::kWritten, SubmissionWrite::kRoundClosed});
  // Another server's copy of a's submission, then a different one from b (the control: kConflict).
  auto again = o.s->insert_submissions({sub("a", 1, 0.5f), sub("b", 1, 0.75f)});
  REQUIRE(again);
  CHECK(again.value() == std::vector<SubmissionWrite>{SubmissionWrite::kSame, SubmissionWrite::kConflict});
  auto stored = o.s->load_submissions("t", 1);
  REQUIRE(stored);
  REQUIRE(stored->size() == 2);
  CHECK(stored.value()[1].coeffs == std::vector<float>{0.25f, -0.25f});  // b's first submission stays
  CHECK(o.s->count_submissions("t", 1).value() == 2);
  // Closed: nothing more gets in, and the round cannot be reopened by a stale writer.
  Round closed = open_round(1, 0);
  closed.state = RoundState::kAbandoned;
  Round next = open_round(2, 0);
  REQUIRE(o.s->update_round("t", closed, &next));
  auto late = o.s->insert_submissions({sub("d", 1, 0.1f)});
  REQUIRE(late);
  CHECK(late.value() == std::vector<SubmissionWrite>{SubmissionWrite::kRoundClosed});
  Round stale = open_round(1, 0);
  stale.deadline_ms = 9999;
  CHECK(o.s->update_round("t", stale, nullptr).code() == StatusCode::kMismatch);
  CHECK(o.s->apply_round("t", stale, {{1, 0.5f}}, 0, nullptr).code() == StatusCode::kMismatch);
  auto head = o.s->task_head("t");
  REQUIRE(head);
  CHECK(head->round == 2);
  CHECK(head->state == "open");
  CHECK(o.s->load_log("t")->size() == 0);  // the refused apply wrote no entry
  auto heads = o.s->task_heads();
  REQUIRE(heads);
  REQUIRE(heads->size() == 1);
  CHECK(heads->at("t") == head.value());
}

TEST_CASE("store: a locked close reads the committed submissions and writes the outcome once", "[server][store]") {
  OpenStore o;
  REQUIRE(o.s->insert_task({"t", "{}", 7, 1000, 0}, open_round(1, 0)));
  REQUIRE(o.s->insert_submissions({sub("a", 1, 0.5f), sub("b", 1, 0.25f)}));
  size_t seen = 0;
  auto decide = [&](std::vector<Submission> committed) -> Result<RoundClosing> {
    seen = committed.size();
    RoundClosing c;
    c.changed = true;
    c.round = open_round(1, 0);
    c.round.state = RoundState::kApplied;
    c.entries = {{11, 0.375f}, {13, -0.375f}};
    c.first_version = 0;
    c.next = open_round(2, 2);
    return c;
  };
  REQUIRE(o.s->close_round("t", 1, decide));
  CHECK(seen == 2);
  auto log = o.s->load_log("t");
  REQUIRE(log);
  REQUIRE(log->size() == 2);
  CHECK(log->entries()[0].coeff == 0.375f);
  // A second closer (another replica that missed the first) changes nothing.
  seen = 0;
  CHECK(o.s->close_round("t", 1, decide).code() == StatusCode::kMismatch);
  CHECK(seen == 0);
  CHECK(o.s->load_log("t")->size() == 2);
  // A decision that fails writes nothing.
  auto failing = [](std::vector<Submission>) -> Result<RoundClosing> { return invalid_argument("no"); };
  CHECK_FALSE(o.s->close_round("t", 2, failing));
  CHECK(o.s->task_head("t")->state == "open");
  auto rounds = o.s->load_rounds("t");
  REQUIRE(rounds);
  CHECK(rounds->size() == 2);
  CHECK(rounds.value()[0].state == RoundState::kApplied);
  CHECK(rounds.value()[0].released_count == 2);
}

TEST_CASE("store: enrolment uses a token once per device, revocation is counted, devices are counted", "[server][store]") {
  OpenStore o;
  REQUIRE(o.s->insert_enrol_token("tok", 2, 10'000, 1000));
  REQUIRE(o.s->enrol_device("tok", {"d1", "s1", 1000, false, "tok"}, 1100));
  REQUIRE(o.s->enrol_device("tok", {"d2", "s2", 1000, false, "tok"}, 1200));
  CHECK(o.s->enrol_device("tok", {"d3", "s3", 1000, false, "tok"}, 1300).code() == StatusCode::kNotFound);  // used up
  auto counts = o.s->count_devices();
  REQUIRE(counts);
  CHECK(counts.value() == std::make_pair(uint64_t{2}, uint64_t{0}));
  REQUIRE(o.s->revoke_device("d2", 1400));
  counts = o.s->count_devices();
  REQUIRE(counts);
  CHECK(counts.value() == std::make_pair(uint64_t{1}, uint64_t{1}));
  CHECK(o.s->revoked_since(1400).value() == std::vector<std::string>{"d2"});
  CHECK(o.s->revoked_since(1401).value().empty());
}

TEST_CASE("store: a shared store holds a round to max_per_token devices of one enrolment token", "[server][store]") {
  OpenStore o;
  REQUIRE(o.s->insert_task({"t", "{}", 7, 1000, 0}, open_round(1, 0)));
  REQUIRE(o.s->insert_enrol_token("tokA", 10, 10'000, 1000));
  REQUIRE(o.s->insert_enrol_token("tokB", 10, 10'000, 1000));
  for (const char* d : {"a1", "a2", "a3", "a4"}) REQUIRE(o.s->enrol_device("tokA", {d, "s", 1000, false, "tokA"}, 1100));
  REQUIRE(o.s->enrol_device("tokB", {"b1", "s", 1000, false, "tokB"}, 1100));
  auto capped = [](StoredSubmission x, const std::string& token) {
    x.token_sha256 = token;
    x.max_per_token = 2;
    return x;
  };
  using W = SubmissionWrite;
  const W over = o.s->shared() ? W::kTokenCap : W::kWritten;  // SQLite: the one server's memory enforces it
  auto w = o.s->insert_submissions({capped(sub("a1", 1, 0.5f), "tokA"), capped(sub("a2", 1, 0.5f), "tokA"),
                                    capped(sub("a3", 1, 0.5f), "tokA"), capped(sub("b1", 1, 0.5f), "tokB")});
  REQUIRE(w);
  CHECK(w.value() == std::vector<W>{W::kWritten, W::kWritten, over, W::kWritten});
  // Another batch (another server): a1 again is the same submission, not a third device; a4 is over.
  auto again = o.s->insert_submissions({capped(sub("a1", 1, 0.5f), "tokA"), capped(sub("a4", 1, 0.5f), "tokA")});
  REQUIRE(again);
  CHECK(again.value() == std::vector<W>{W::kSame, over});
  // Without a cap the same device goes in (on SQLite it already did).
  auto free = o.s->insert_submissions({sub("a4", 1, 0.5f)});
  REQUIRE(free);
  CHECK(free.value() == std::vector<W>{o.s->shared() ? W::kWritten : W::kSame});
  CHECK(o.s->count_submissions("t", 1).value() == (o.s->shared() ? 4u : 5u));
}

TEST_CASE("store: schema migrations bring an old SQLite store up to date and a newer one is refused", "[server][store]") {
  const std::string dir = temp_dir("migrate");
  const std::string path = dir + "/old.db";
  {  // A store as the first release wrote it: version 1, no indexes of version 2, one task.
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    const char* v1 =
        "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE tasks(id TEXT PRIMARY KEY, spec TEXT NOT NULL, seed_key INTEGER NOT NULL, created_ms INTEGER NOT NULL);"
        "CREATE TABLE rounds(task TEXT NOT NULL REFERENCES tasks(id), id INTEGER NOT NULL, base_version INTEGER NOT NULL,"
        " seeds BLOB NOT NULL, opened_ms INTEGER NOT NULL, deadline_ms INTEGER NOT NULL, extensions INTEGER NOT NULL,"
        " state TEXT NOT NULL, PRIMARY KEY(task, id));"
        "CREATE TABLE submissions(task TEXT NOT NULL, round INTEGER NOT NULL, device TEXT NOT NULL, coeffs BLOB NOT NULL,"
        " examples INTEGER NOT NULL, base_version INTEGER NOT NULL, weight REAL NOT NULL, stats TEXT NOT NULL,"
        " received_ms INTEGER NOT NULL, PRIMARY KEY(task, round, device));"
        "CREATE TABLE log(task TEXT NOT NULL, version INTEGER NOT NULL, seed INTEGER NOT NULL, coeff_bits INTEGER NOT NULL,"
        " round INTEGER NOT NULL, PRIMARY KEY(task, version));"
        "CREATE TABLE devices(id TEXT PRIMARY KEY, secret_sha256 TEXT NOT NULL, created_ms INTEGER NOT NULL, revoked_ms INTEGER);"
        "CREATE TABLE enrol_tokens(token_sha256 TEXT PRIMARY KEY, uses_left INTEGER NOT NULL, expires_ms INTEGER NOT NULL,"
        " created_ms INTEGER NOT NULL);"
        "CREATE TABLE checkpoints(task TEXT NOT NULL, version INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY(task, version));"
        "CREATE TABLE device_tokens(device TEXT PRIMARY KEY, token_sha256 TEXT NOT NULL);"
        "INSERT INTO meta VALUES('schema_version','1');"
        "INSERT INTO tasks VALUES('old','{}',5,100);";
    REQUIRE(sqlite3_exec(db, v1, nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  {
    auto s = Store::open(path, Durability::kNormal);
    REQUIRE(s);
    CHECK(s.value()->schema_version() == 2);
    auto tasks = s.value()->load_tasks();
    REQUIRE(tasks);
    REQUIRE(tasks->size() == 1);
    CHECK(tasks.value()[0].seed_key == 5);  // the data came along
  }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM sqlite_master WHERE name='rounds_open'", -1, &st, nullptr);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  CHECK(sqlite3_column_int(st, 0) == 1);  // migration 2 ran
  sqlite3_finalize(st);
  REQUIRE(sqlite3_exec(db, "UPDATE meta SET value='99' WHERE key='schema_version'", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  auto newer = Store::open(path, Durability::kNormal);
  REQUIRE_FALSE(newer);
  CHECK(newer.status().message().find("newer") != std::string::npos);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}
