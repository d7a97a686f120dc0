#include "pg/connection.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>

namespace pocketllm::server::pg {

Param i64(int64_t v) { return std::to_string(v); }

Param f64(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);  // round-trips every double
  return std::string(buf);
}

Param bytea(const std::string& bytes) {
  static const char* hex = "0123456789abcdef";
  std::string out = "\\x";
  out.reserve(2 + 2 * bytes.size());
  for (unsigned char c : bytes) {
    out.push_back(hex[c >> 4]);
    out.push_back(hex[c & 15]);
  }
  return out;
}

ResultSet::~ResultSet() {
  if (r_) PQclear(r_);
}
int ResultSet::rows() const { return PQntuples(r_); }
bool ResultSet::null(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
std::string ResultSet::text(int row, int col) const {
  return std::string(PQgetvalue(r_, row, col), static_cast<size_t>(PQgetlength(r_, row, col)));
}
int64_t ResultSet::i64(int row, int col) const { return std::strtoll(PQgetvalue(r_, row, col), nullptr, 10); }
double ResultSet::f64(int row, int col) const { return std::strtod(PQgetvalue(r_, row, col), nullptr); }
int64_t ResultSet::affected() const { return std::strtoll(PQcmdTuples(r_), nullptr, 10); }

Result<std::string> ResultSet::bytea(int row, int col) const {
  const char* p = PQgetvalue(r_, row, col);
  const size_t n = static_cast<size_t>(PQgetlength(r_, row, col));
  if (n < 2 || p[0] != '\\' || p[1] != 'x' || n % 2 != 0) return corrupt("store: a bytea value is not in hex form");
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out((n - 2) / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    const int hi = nibble(p[2 + 2 * i]), lo = nibble(p[3 + 2 * i]);
    if (hi < 0 || lo < 0) return corrupt("store: a bytea value is not in hex form");
    out[i] = static_cast<char>(hi << 4 | lo);
  }
  return out;
}

std::string redact_url(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  const size_t at = url.find('@', scheme + 3);
  if (at == std::string::npos) return url;
  const size_t colon = url.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}

Result<std::unique_ptr<Connection>> Connection::open(const std::string& url) {
  pg_conn* c = PQconnectdb(url.c_str());
  if (!c) return io_error("store " + redact_url(url) + ": out of memory");
  if (PQstatus(c) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(c);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    PQfinish(c);
    return io_error("store " + redact_url(url) + ": " + msg);
  }
  return std::unique_ptr<Connection>(new Connection(c, redact_url(url)));
}

Connection::~Connection() { PQfinish(c_); }

bool Connection::ensure(bool* reconnected) {
  *reconnected = false;
  if (PQstatus(c_) == CONNECTION_OK) return true;
  PQreset(c_);
  prepared_.clear();  // prepared statements went with the old session
  *reconnected = true;
  return PQstatus(c_) == CONNECTION_OK;
}

Result<ResultSet> Connection::exec(const std::string& sql, const std::vector<Param>& params) {
  std::vector<const char*> values(params.size());
  for (size_t i = 0; i < params.size(); ++i) values[i] = params[i] ? params[i]->c_str() : nullptr;
  return finish(PQexecParams(c_, sql.c_str(), static_cast<int>(params.size()), nullptr, values.data(), nullptr, nullptr, 0));
}

Result<ResultSet> Connection::exec_prepared(const std::string& name, const std::string& sql, const std::vector<Param>& params) {
  if (std::find(prepared_.begin(), prepared_.end(), name) == prepared_.end()) {
    auto prepared = finish(PQprepare(c_, name.c_str(), sql.c_str(), 0, nullptr));
    if (!prepared) return prepared.status();
    prepared_.push_back(name);
  }
  std::vector<const char*> values(params.size());
  for (size_t i = 0; i < params.size(); ++i) values[i] = params[i] ? params[i]->c_str() : nullptr;
  return finish(PQexecPrepared(c_, name.c_str(), static_cast<int>(params.size()), values.data(), nullptr, nullptr, 0));
}

Result<ResultSet> Connection::finish(pg_result* r) {
  sqlstate_.clear();
  ResultSet rs(r);
  const ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return rs;
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  if (state) sqlstate_ = state;
  std::string msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c_);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  if (PQstatus(c_) != CONNECTION_OK) return io_error("store " + redacted_ + ": connection lost: " + msg);
  // 23505 unique violation: a row another server wrote first.
  if (sqlstate_ == "23505") return mismatch("store: " + msg);
  return io_error("store: " + msg + (sqlstate_.empty() ? "" : " [" + sqlstate_ + "]"));
}

std::string array_literal(const std::vector<std::string>& elements) {
  std::string out = "{";
  for (size_t i = 0; i < elements.size(); ++i) {
    if (i) out.push_back(',');
    out.push_back('"');
    for (char ch : elements[i]) {
      if (ch == '"' || ch == '\\') out.push_back('\\');
      out.push_back(ch);
    }
    out.push_back('"');
  }
  return out + "}";
}

Status Connection::exec_script(const std::string& sql) {
  pg_result* r = PQexec(c_, sql.c_str());
  const ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  std::string msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c_);
  if (r) PQclear(r);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return Status::ok();
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  return io_error("store " + redacted_ + ": " + msg);
}

}  // namespace pocketllm::server::pg
