// A small libpq wrapper for the PostgreSQL store: one connection, text parameters and results, and a
// reconnect when the server went away (a restart of PostgreSQL costs the calls in flight, not the process).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pocketllm/common/status.h"

struct pg_conn;
struct pg_result;

namespace pocketllm::server::pg {

// One parameter in PostgreSQL's text form; nullopt is SQL NULL.
using Param = std::optional<std::string>;
Param i64(int64_t v);
inline Param u64(uint64_t v) { return i64(static_cast<int64_t>(v)); }
Param f64(double v);
Param bytea(const std::string& bytes);  // the '\x…' hex form

class ResultSet {
 public:
  explicit ResultSet(pg_result* r) : r_(r) {}
  ResultSet(ResultSet&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
  ResultSet& operator=(ResultSet&&) = delete;
  ~ResultSet();
  int rows() const;
  bool null(int row, int col) const;
  std::string text(int row, int col) const;
  int64_t i64(int row, int col) const;
  uint64_t u64(int row, int col) const { return static_cast<uint64_t>(i64(row, col)); }
  double f64(int row, int col) const;
  Result<std::string> bytea(int row, int col) const;  // decodes the '\x…' form
  // Rows changed by an INSERT/UPDATE/DELETE.
  int64_t affected() const;

 private:
  pg_result* r_;
};

class Connection {
 public:
  // `url`: a libpq connection URI (postgresql://user@host:port/db?…).
  static Result<std::unique_ptr<Connection>> open(const std::string& url);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs one statement. Errors carry PostgreSQL's message and SQLSTATE; a lost connection is io_error.
  Result<ResultSet> exec(const std::string& sql, const std::vector<Param>& params = {});
  // The same through a statement prepared once per connection under `name` (constant SQL only).
  Result<ResultSet> exec_prepared(const std::string& name, const std::string& sql, const std::vector<Param>& params);
  // Runs several statements without parameters (migrations).
  Status exec_script(const std::string& sql);
  // Reconnects when the connection is broken. Returns whether it is usable; `reconnected` tells the
  // caller that session state (advisory locks, settings) is gone.
  bool ensure(bool* reconnected);
  // The URL without its password, for logs.
  const std::string& redacted() const { return redacted_; }
  // The SQLSTATE of the last failed exec ("" when it did not come from the server).
  const std::string& last_sqlstate() const { return sqlstate_; }

 private:
  Connection(pg_conn* c, std::string redacted) : c_(c), redacted_(std::move(redacted)) {}
  pg_conn* c_;
  std::string redacted_;
  std::string sqlstate_;
  std::vector<std::string> prepared_;  // statement names prepared on this session
  Result<ResultSet> finish(pg_result* r);
};

// A text[] (or bytea[], bigint[] …) literal of already-formatted elements: {"a","b\"c"}.
std::string array_literal(const std::vector<std::string>& elements);

// A URL with the password (user:password@) replaced by "***".
std::string redact_url(const std::string& url);

}  // namespace pocketllm::server::pg
