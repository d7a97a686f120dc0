#include "pocketllm/server/config.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <sstream>

#include "pocketllm/common/file_util.h"
#include "pocketllm/common/json_util.h"
#include "pocketllm/common/sha256.h"

namespace pocketllm::server {

const char* server_usage() {
  return R"(usage: pocketllm-server [--config FILE] [options]

The pocketllm aggregation server: devices upload (seed, scalar) pairs for federated zeroth-order
fine-tuning; the server aggregates rounds into a shared update log (docs/protocol.md).

  --config FILE            JSON configuration (keys as below, see docs/server.md); flags override it
  --listen HOST:PORT       address to listen on (default 0.0.0.0:8443; port 0 picks a free one)
  --threads N              network threads (default 2)
  --tls-cert FILE          PEM certificate chain (required unless --insecure)
  --tls-key FILE           PEM private key (unencrypted); SIGHUP reads both files again: a renewed
                           certificate goes live for new connections without a restart
  --insecure               serve plain HTTP (a warning is logged; for loopback tests only)
  --store FILE|URL         SQLite file (default pocketllm-server.db; WAL mode, created when missing), or a
                           postgresql://user@host:port/db URL shared by replicas (docs/server.md "Replicas")
  --durability full|normal fsync every commit (full, default) or survive process crashes only (normal)
  --admin-token-file FILE  file whose first line is the admin bearer token (only its SHA-256 is kept)
  --admin-token-sha256 HEX the admin token's SHA-256 instead of the token
  --max-body-bytes N       largest request body (default 1048576; larger gets 413)
  --header-timeout S       seconds for a whole request head, keep-alive idle included (default 15)
  --body-timeout S         seconds for a request body (default 30)
  --device-rate R          requests per second per device, token bucket (default 20; 0 = unlimited)
  --device-burst B         bucket size (default 40)
  --auth-failure-rate R    failed credentials per second per address before 429 (default 1; 0 = unlimited)
  --auth-failure-burst B   failures allowed at once per address (default 20)
  --max-connections N      open connections at once (default 4096, never above the fd limit - 64)
  --max-connections-per-address N   from one IP address (default 256); the excess is closed at accept
  --drain-timeout S        after a 413/431, how long the rest of the request is discarded (default 5)
  --unauthenticated-idle S keep-alive wait of a connection without an authenticated request (default 2)
  --snapshot-threads N     threads rebuilding snapshots, never the network's (default 1)
  --snapshot-queue N       snapshot requests waiting at most; beyond: 503 + Retry-After (default 8)
  --checkpoint-every N     versions between stored snapshot checkpoints (default 256)
  --metrics WHO            who may read /metrics: loopback (default; the admin token from anywhere), admin, public
  --shutdown-grace S       seconds in-flight requests get after SIGTERM (default 5)
  --port-file FILE         write the bound port here once listening
  --reuse-port             share the listen port with other replicas on this host (SO_REUSEPORT: the
                           kernel spreads new connections over them; no balancer process in between)
  --log-format text|json   log lines as text (default) or one JSON object each: {"ts","level","msg",…}
  --access-log             one log line per request: request_id, method, route, status, ms, remote
                           (every reply carries X-Request-Id: the client's own or one made here)
  --help                   this text

  pocketllm-server hash-token < token   prints the SHA-256 to put in admin_token_sha256
  pocketllm-server admin --help         the operator's CLI: tasks, enrolment tokens, devices, the log
  pocketllm-server routes               the API's routes (docs/openapi.yaml describes each)
)";
}

namespace {

using nlohmann::json;

Status bad(const std::string& what) { return invalid_argument(what); }

Status parse_listen(const std::string& text, ServerConfig* c) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos) return bad("--listen must be HOST:PORT, got " + text);
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string port = text.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos || std::stoul(port) > 65535)
    return bad("bad port in --listen " + text);
  c->http.address = host.empty() ? "0.0.0.0" : host;
  c->http.port = static_cast<uint16_t>(std::stoul(port));
  return Status::ok();
}

std::string shortest(double v) {
  std::ostringstream o;
  o << v;  // 0, 100000, 0.5 — not 0.000000
  return o.str();
}

Status number(const std::string& key, const std::string& text, double lo, double hi, double* out) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(v) || v < lo || v > hi)
    return bad(key + " must be a number in [" + shortest(lo) + ", " + shortest(hi) + "], got '" + text + "'");
  *out = v;
  return Status::ok();
}

// The numeric settings: name (as in the config file; flags map onto the same names), range, and where
// the value goes (seconds become milliseconds where the option holds milliseconds).
struct NumericSetting {
  const char* key;
  double lo, hi;
  void (*set)(ServerConfig* c, double v);
};
const NumericSetting kNumeric[] = {
    {"threads", 1, 256, [](ServerConfig* c, double v) { c->http.threads = static_cast<int>(v); }},
    {"max_body_bytes", 1024, 1 << 30, [](ServerConfig* c, double v) { c->http.max_body_bytes = static_cast<uint64_t>(v); }},
    {"header_timeout_s", 0.1, 3600, [](ServerConfig* c, double v) { c->http.header_timeout_ms = static_cast<int>(v * 1000); }},
    {"body_timeout_s", 0.1, 3600, [](ServerConfig* c, double v) { c->http.body_timeout_ms = static_cast<int>(v * 1000); }},
    {"shutdown_grace_s", 0, 3600, [](ServerConfig* c, double v) { c->http.shutdown_grace_ms = static_cast<int>(v * 1000); }},
    {"max_connections", 1, 1e6, [](ServerConfig* c, double v) { c->http.max_connections = static_cast<int>(v); }},
    {"max_connections_per_address", 1, 1e6, [](ServerConfig* c, double v) { c->http.max_connections_per_address = static_cast<int>(v); }},
    {"drain_timeout_s", 0.1, 600, [](ServerConfig* c, double v) { c->http.drain_timeout_ms = static_cast<int>(v * 1000); }},
    {"unauthenticated_idle_s", 0.1, 3600, [](ServerConfig* c, double v) { c->http.unauthenticated_idle_ms = static_cast<int>(v * 1000); }},
    {"device_rate_per_s", 0, 1e6, [](ServerConfig* c, double v) { c->service.device_rate_per_s = v; }},
    {"device_burst", 1, 1e6, [](ServerConfig* c, double v) { c->service.device_burst = v; }},
    {"auth_failure_rate_per_s", 0, 1e6, [](ServerConfig* c, double v) { c->service.auth_failure_rate_per_s = v; }},
    {"auth_failure_burst", 1, 1e6, [](ServerConfig* c, double v) { c->service.auth_failure_burst = v; }},
    {"snapshot_threads", 1, 64, [](ServerConfig* c, double v) { c->service.snapshot_threads = static_cast<int>(v); }},
    {"snapshot_queue", 1, 10000, [](ServerConfig* c, double v) { c->service.snapshot_queue = static_cast<size_t>(v); }},
    {"commit_linger_us", 0, 100000, [](ServerConfig* c, double v) { c->service.commit_linger_us = static_cast<int>(v); }},
    {"checkpoint_every", 1, 1e9, [](ServerConfig* c, double v) { c->service.checkpoint_every = static_cast<uint64_t>(v); }},
};
const char* const kOther[] = {"listen", "tls_cert", "tls_key", "insecure", "store", "durability", "admin_token_file",
                              "admin_token_sha256", "port_file", "metrics", "log_format", "access_log", "reuse_port"};

bool known_setting(const std::string& key) {
  for (const auto& n : kNumeric)
    if (key == n.key) return true;
  for (const char* k : kOther)
    if (key == k) return true;
  return false;
}

Status apply_admin_token_file(const std::string& value, ServerConfig* c) {
  auto text = read_file(value, 4096);
  if (!text) return bad("admin token file: " + text.status().message());
  std::string token = text->substr(0, text->find('\n'));
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  if (token.size() < 16) return bad("the admin token in " + value + " is shorter than 16 characters");
  c->service.admin_token_sha256 = to_hex(sha256(token));
  return Status::ok();
}

// Applies one setting (a known one: known_setting).
Status apply(const std::string& key, const std::string& value, ServerConfig* c) {
  for (const auto& n : kNumeric) {
    if (key != n.key) continue;
    double v = 0;
    POCKETLLM_RETURN_IF_ERROR(number(key, value, n.lo, n.hi, &v));
    n.set(c, v);
    return Status::ok();
  }
  if (key == "listen") return parse_listen(value, c);
  if (key == "admin_token_file") return apply_admin_token_file(value, c);
  if (key == "tls_cert") c->http.cert_file = value;
  else if (key == "tls_key") c->http.key_file = value;
  else if (key == "store") c->service.store_path = value;
  else if (key == "port_file") c->http.port_file = value;
  else if (key == "insecure") {
    if (value != "true" && value != "false") return bad("insecure must be true or false");
    c->insecure = value == "true";
  } else if (key == "durability") {
    if (value != "full" && value != "normal") return bad("durability must be full or normal");
    c->service.durability = value == "full" ? Durability::kFull : Durability::kNormal;
  } else if (key == "admin_token_sha256") {
    if (value.size() != 64 || value.find_first_not_of("0123456789abcdef") != std::string::npos)
      return bad("admin_token_sha256 must be 64 lower-case hex digits");
    c->service.admin_token_sha256 = value;
  } else if (key == "log_format") {
    if (value != "text" && value != "json") return bad("log-format must be text or json");
    c->log_json = value == "json";
  } else if (key == "access_log") {
    if (value != "true" && value != "false") return bad("access-log must be true or false");
    c->http.access_log = value == "true";
  } else if (key == "reuse_port") {
    if (value != "true" && value != "false") return bad("reuse-port must be true or false");
    c->http.reuse_port = value == "true";
  } else if (key == "metrics") {
    if (value == "loopback") c->service.metrics = MetricsExposure::kLoopback;
    else if (value == "admin") c->service.metrics = MetricsExposure::kAdmin;
    else if (value == "public") c->service.metrics = MetricsExposure::kPublic;
    else return bad("metrics must be loopback, admin or public");
  } else {
    return bad("unknown setting " + key);
  }
  return Status::ok();
}

}  // namespace

Result<ServerConfig> parse_server_config(const std::vector<std::string>& args) {
  ServerConfig c;
  // The config file first, wherever --config appears, so flags override it.
  for (size_t i = 0; i < args.size(); ++i) {
    std::string file;
    if (args[i].rfind("--config=", 0) == 0) file = args[i].substr(9);
    else if (args[i] == "--config" && i + 1 < args.size()) file = args[i + 1];
    else if (args[i] == "--config") return bad("--config needs a file");
    else continue;
    auto text = read_file(file, 1 << 20);
    if (!text) return bad("config: " + text.status().message());
    json j = parse_json(text.value());
    if (j.is_discarded() || !j.is_object()) return bad("config " + file + " is not a JSON object");
    for (auto it = j.begin(); it != j.end(); ++it) {
      std::string value;
      if (it.value().is_string()) value = it.value().get<std::string>();
      else if (it.value().is_boolean()) value = it.value().get<bool>() ? "true" : "false";
      else if (it.value().is_number()) value = it.value().dump();
      else return bad("config " + file + ": " + it.key() + " must be a string, number or boolean");
      Status s = apply(it.key(), value, &c);
      if (!s) return bad("config " + file + ": " + s.message());
    }
  }
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    std::string inline_value;
    bool has_inline = false;
    if (const size_t eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {  // --name=value
      inline_value = a.substr(eq + 1);
      a = a.substr(0, eq);
      has_inline = true;
    }
    if (a == "--help" || a == "-h") {
      c.help = true;
      return c;
    }
    if (a == "--insecure") {
      c.insecure = true;
      continue;
    }
    if (a == "--access-log") {
      c.http.access_log = true;
      continue;
    }
    if (a == "--reuse-port") {
      c.http.reuse_port = true;
      continue;
    }
    if (a.rfind("--", 0) != 0) return bad("unexpected argument " + a + " (see --help)");
    if (!has_inline && i + 1 >= args.size()) return bad(a + " needs a value");
    const std::string value = has_inline ? inline_value : args[++i];
    if (a == "--config") continue;
    std::string key = a.substr(2);
    for (char& ch : key) ch = ch == '-' ? '_' : ch;
    if (key == "header_timeout" || key == "body_timeout" || key == "shutdown_grace" || key == "drain_timeout" ||
        key == "unauthenticated_idle")
      key += "_s";
    if (key == "device_rate") key = "device_rate_per_s";
    if (key == "auth_failure_rate") key = "auth_failure_rate_per_s";
    if (!known_setting(key)) return bad("unknown option " + a + " (see --help)");
    POCKETLLM_RETURN_IF_ERROR(apply(key, value, &c));
  }
  c.http.tls = !c.insecure;
  if (c.service.admin_token_sha256.empty()) return bad("an admin credential is required: --admin-token-file FILE or --admin-token-sha256 HEX");
  if (c.http.tls && (c.http.cert_file.empty() || c.http.key_file.empty()))
    return bad("TLS needs --tls-cert and --tls-key (or --insecure for plain HTTP on a trusted network)");
  return c;
}

}  // namespace pocketllm::server
