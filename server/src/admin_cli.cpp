#include "admin_cli.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "pocketllm/common/file_util.h"
#include "pocketllm/net/http_client.h"

namespace pocketllm::server {
namespace {

using nlohmann::json;

const char* kAdminHelp = R"(usage: pocketllm-server admin --url URL --admin-token-file FILE [--ca FILE | --pin PINS] [--json] COMMAND

  task create --spec FILE|-        create a task from its JSON spec (docs/protocol.md section 3; - reads stdin)
  task list                        the tasks with their version and current round
  task show ID                     a task's spec and status (privacy budget included)
  task close-round ID [ROUND]      close a round now (default: the current one); it applies, extends or is abandoned
  tokens create [--uses N] [--ttl-seconds S]   an enrolment token (printed once; the server keeps its hash)
  devices list [--limit N]         enrolled devices (every page, in id order)
  devices revoke ID                revoke a device (its submissions to open rounds are dropped)
  log export ID [--out FILE] [--format jsonl|binary]
                                   the task's whole update log (stdout when no --out), page by page

  --json     print the server's JSON instead of a table
  --ca FILE  trust this CA (PEM) for https:// URLs; the system store otherwise
  --pin PINS or trust exactly the server whose key (sha256/BASE64, the pin the server logs) or
             certificate (64 hex) is one of these, comma-separated
  The admin token is read from the file's first line; it never appears on the command line.
)";

struct Cli {
  std::unique_ptr<net::HttpClient> http;
  std::string token;
  bool as_json = false;
  std::string limit = "1000", out, format = "jsonl";  // devices list / log export options

  // One request; a non-2xx answer is an error with the server's code and message.
  bool call(const std::string& method, const std::string& target, const std::string& body, json* out) {
    auto r = http->request(method, target, body, token);
    if (!r) {
      std::fprintf(stderr, "pocketllm-server admin: %s %s: %s\n", method.c_str(), target.c_str(), r.status().message().c_str());
      return false;
    }
    json j = json::parse(r->body, nullptr, false);
    if (r->status < 200 || r->status >= 300) {
      std::string why = r->body.substr(0, 500);
      if (!j.is_discarded() && j.contains("error")) why = j["error"].value("code", "") + ": " + j["error"].value("message", "");
      std::fprintf(stderr, "pocketllm-server admin: %s %s: HTTP %d %s\n", method.c_str(), target.c_str(), r->status, why.c_str());
      return false;
    }
    if (j.is_discarded()) {
      std::fprintf(stderr, "pocketllm-server admin: %s %s: the answer is not JSON\n", method.c_str(), target.c_str());
      return false;
    }
    *out = std::move(j);
    return true;
  }
};

std::string cell(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "-";
  return v.dump();
}

// A table of the given columns (header, then one line per row), columns padded to their widest cell.
void print_table(const std::vector<std::string>& cols, const json& rows) {
  std::vector<size_t> width;
  for (const auto& c : cols) width.push_back(c.size());
  for (const auto& r : rows)
    for (size_t i = 0; i < cols.size(); ++i) width[i] = std::max(width[i], cell(r.value(cols[i], json())).size());
  auto line = [&](auto get) {
    std::string out;
    for (size_t i = 0; i < cols.size(); ++i) {
      std::string v = get(i);
      out += v + std::string(i + 1 < cols.size() ? width[i] - v.size() + 2 : 0, ' ');
    }
    std::printf("%s\n", out.c_str());
  };
  line([&](size_t i) {
    std::string h = cols[i];
    for (auto& ch : h) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    return h;
  });
  for (const auto& r : rows) line([&](size_t i) { return cell(r.value(cols[i], json())); });
}

// The value of --name in args (removed from them), or `fallback`.
std::string take(std::vector<std::string>* args, const std::string& name, const std::string& fallback = "", bool* found = nullptr) {
  for (size_t i = 0; i < args->size(); ++i) {
    if ((*args)[i] != name) continue;
    if (name == "--json") {
      args->erase(args->begin() + static_cast<long>(i));
      if (found) *found = true;
      return "true";
    }
    if (i + 1 >= args->size()) return fallback;
    std::string v = (*args)[i + 1];
    args->erase(args->begin() + static_cast<long>(i), args->begin() + static_cast<long>(i) + 2);
    if (found) *found = true;
    return v;
  }
  return fallback;
}

int usage(const std::string& why) {
  std::fprintf(stderr, "pocketllm-server admin: %s\n\n%s", why.c_str(), kAdminHelp);
  return 2;
}

int task_command(Cli& c, const std::vector<std::string>& a) {
  json j;
  if (a.size() >= 2 && a[1] == "list" && a.size() == 2) {
    if (!c.call("GET", "/v1/tasks", "", &j)) return 1;
    if (c.as_json) std::printf("%s\n", j.dump(1).c_str());
    else print_table({"id", "version", "round"}, j["tasks"]);
    return 0;
  }
  if (a.size() == 3 && a[1] == "show") {
    if (!c.call("GET", "/v1/tasks/" + a[2], "", &j)) return 1;
    if (c.as_json) {
      std::printf("%s\n", j.dump(1).c_str());
      return 0;
    }
    json rows = json::array();
    for (auto it = j.begin(); it != j.end(); ++it) rows.push_back({{"field", it.key()}, {"value", cell(it.value())}});
    print_table({"field", "value"}, rows);
    return 0;
  }
  if ((a.size() == 3 || a.size() == 4) && a[1] == "close-round") {
    std::string round = a.size() == 4 ? a[3] : "";
    if (round.empty()) {
      if (!c.call("GET", "/v1/tasks/" + a[2], "", &j)) return 1;
      round = std::to_string(j.value("round", 0));
    }
    if (!c.call("POST", "/v1/admin/tasks/" + a[2] + "/rounds/" + round + "/close", "", &j)) return 1;
    if (c.as_json) std::printf("%s\n", j.dump(1).c_str());
    else std::printf("task %s round %s: %s with %s submissions\n", a[2].c_str(), round.c_str(), cell(j.value("state", json())).c_str(),
                     cell(j.value("submissions", json())).c_str());
    return 0;
  }
  return usage("task: create --spec FILE | list | show ID | close-round ID [ROUND]");
}

int create_task(Cli& c, const std::string& spec_path) {
  std::string body;
  if (spec_path == "-") {
    std::stringstream ss;
    ss << std::cin.rdbuf();
    body = ss.str();
  } else {
    auto f = read_file(spec_path, 1 << 20);
    if (!f) {
      std::fprintf(stderr, "pocketllm-server admin: %s\n", f.status().message().c_str());
      return 1;
    }
    body = f.value();
  }
  if (json::parse(body, nullptr, false).is_discarded()) return usage("--spec: " + spec_path + " is not JSON");
  json j;
  if (!c.call("POST", "/v1/admin/tasks", body, &j)) return 1;
  if (c.as_json) std::printf("%s\n", j.dump(1).c_str());
  else std::printf("task %s created (round 1 open, tau %s)\n", cell(j.value("id", json())).c_str(), cell(j.value("tau", json())).c_str());
  return 0;
}

int devices_command(Cli& c, const std::vector<std::string>& a) {
  json j;
  const std::string& limit = c.limit;
  if (a.size() >= 2 && a[1] == "list") {
    if (a.size() != 2) return usage("devices list [--limit N]");
    json all = json::array();
    std::string after;
    for (;;) {
      if (!c.call("GET", "/v1/admin/devices?limit=" + limit + (after.empty() ? "" : "&after=" + after), "", &j)) return 1;
      for (auto& d : j["devices"]) all.push_back(d);
      if (!j.contains("next")) break;
      after = j["next"].get<std::string>();
    }
    if (c.as_json) std::printf("%s\n", json{{"devices", all}}.dump(1).c_str());
    else print_table({"id", "created_ms", "revoked", "token"}, all);
    return 0;
  }
  if (a.size() == 3 && a[1] == "revoke") {
    if (!c.call("POST", "/v1/admin/devices/" + a[2] + "/revoke", "", &j)) return 1;
    if (c.as_json) std::printf("%s\n", j.dump(1).c_str());
    else std::printf("device %s revoked\n", a[2].c_str());
    return 0;
  }
  return usage("devices: list | revoke ID");
}

int log_export(Cli& c, const std::vector<std::string>& a) {
  const std::string &out = c.out, &format = c.format;
  if (a.size() != 3 || (format != "jsonl" && format != "binary")) return usage("log export ID [--out FILE] [--format jsonl|binary]");
  std::string text;
  uint64_t since = 0, version = 0;
  json j;
  for (;;) {
    if (!c.call("GET", "/v1/tasks/" + a[2] + "/log?since=" + std::to_string(since) + "&limit=10000", "", &j)) return 1;
    for (const auto& e : j["entries"]) {
      if (format == "jsonl") {
        text += json{{"seed", e["seed"]}, {"coeff", e["coeff"]}}.dump() + "\n";
      } else {  // the protocol's binary entry: seed (u64 LE), coefficient (f32 LE)
        uint64_t seed = std::stoull(e["seed"].get<std::string>(), nullptr, 16);
        float coeff = e["coeff"].get<float>();
        text.append(reinterpret_cast<const char*>(&seed), 8);
        text.append(reinterpret_cast<const char*>(&coeff), 4);
      }
    }
    version = j.value("version", uint64_t{0});
    since = j.value("next", since);
    if (j.value("complete", true)) break;
  }
  if (out.empty()) {
    std::fwrite(text.data(), 1, text.size(), stdout);
  } else {
    Status s = write_file_atomic(out, text);
    if (!s) {
      std::fprintf(stderr, "pocketllm-server admin: %s\n", s.message().c_str());
      return 1;
    }
    std::fprintf(stderr, "wrote %llu entries (version %llu) to %s\n", static_cast<unsigned long long>(since),
                 static_cast<unsigned long long>(version), out.c_str());
  }
  return 0;
}

}  // namespace

int run_admin_cli(const std::vector<std::string>& args_in) {
  std::vector<std::string> a = args_in;
  for (const auto& x : a)
    if (x == "--help" || x == "-h") {
      std::fputs(kAdminHelp, stdout);
      return 0;
    }
  bool as_json = false;
  take(&a, "--json", "", &as_json);
  const std::string url = take(&a, "--url"), token_file = take(&a, "--admin-token-file"), ca = take(&a, "--ca"),
                    pin = take(&a, "--pin");
  const std::string spec = take(&a, "--spec");
  const std::string uses = take(&a, "--uses"), ttl = take(&a, "--ttl-seconds");
  const std::string limit = take(&a, "--limit", "1000"), out = take(&a, "--out"), format = take(&a, "--format", "jsonl");
  if (url.empty() || token_file.empty()) return usage("--url and --admin-token-file are required");
  if (a.empty()) return usage("a command is required");
  auto t = read_file(token_file, 4096);
  if (!t) {
    std::fprintf(stderr, "pocketllm-server admin: %s\n", t.status().message().c_str());
    return 1;
  }
  Cli c;
  c.token = t->substr(0, t->find_first_of("\r\n"));
  if (c.token.empty()) return usage(token_file + ": empty admin token");
  c.as_json = as_json;
  c.limit = limit;
  c.out = out;
  c.format = format;
  net::ClientOptions o;
  o.url = url;
  o.ca_file = ca;
  o.pinned_sha256 = pin;
  if (!ca.empty() && !pin.empty()) return usage("give --ca or --pin, not both");
  auto http = net::HttpClient::create(o);
  if (!http) {
    std::fprintf(stderr, "pocketllm-server admin: %s\n", http.status().message().c_str());
    return 1;
  }
  c.http = std::move(http.value());
  for (const auto& x : a)
    if (x.rfind("--", 0) == 0) return usage("unknown option " + x);
  if (a[0] == "task" && a.size() == 2 && a[1] == "create") {
    if (spec.empty()) return usage("task create needs --spec FILE (or - for stdin)");
    return create_task(c, spec);
  }
  if (a[0] == "task") return task_command(c, a);
  if (a[0] == "tokens" && a.size() == 2 && a[1] == "create") {
    json body = json::object();
    try {
      if (!uses.empty()) body["uses"] = std::stoll(uses);
      if (!ttl.empty()) body["ttl_seconds"] = std::stod(ttl);
    } catch (const std::exception&) {
      return usage("--uses and --ttl-seconds take numbers");
    }
    json j;
    if (!c.call("POST", "/v1/admin/enrolment-tokens", body.dump(), &j)) return 1;
    if (c.as_json) std::printf("%s\n", j.dump(1).c_str());
    else print_table({"token", "uses", "expires_ms"}, json::array({j}));
    return 0;
  }
  if (a[0] == "devices") return devices_command(c, a);
  if (a[0] == "log" && a.size() >= 2 && a[1] == "export") return log_export(c, a);
  return usage("unknown command '" + a[0] + "'");
}

}  // namespace pocketllm::server
