// The /v1 JSON API (docs/protocol.md): routing, authentication, validation and the endpoints.
#include <chrono>
#include <condition_variable>
#include <cmath>
#include <limits>

#include "pocketllm/common/safetensors.h"
#include "pocketllm/common/sha256.h"
#include "pocketllm/common/update_log.h"
#include "service_internal.h"

namespace pocketllm::server {
namespace {

using nlohmann::json;

HttpResponse json_response(int status, const json& body) {
  HttpResponse r;
  r.status = status;
  // Messages may quote the request (a path, a field name): bytes that are not UTF-8 are replaced.
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  r.body += '\n';
  return r;
}

// {"error": {"code": "...", "message": "..."}}: code is stable for programs, message is for people.
HttpResponse error(int status, const std::string& code, const std::string& message) {
  return json_response(status, {{"error", {{"code", code}, {"message", message}}}});
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) parts.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return parts;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool url_decode(const std::string& in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%') {
      if (i + 2 >= in.size()) return false;
      const int a = hex_value(in[i + 1]), b = hex_value(in[i + 2]);
      if (a < 0 || b < 0) return false;
      out->push_back(static_cast<char>(a * 16 + b));
      i += 2;
    } else {
      out->push_back(in[i] == '+' ? ' ' : in[i]);
    }
  }
  return true;
}

bool parse_u64(const std::string& s, uint64_t* out) {
  if (s.empty() || s.size() > 19) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

json round_json(const TaskSpec& spec, const Round& r, int64_t now) {
  json seeds = json::array();
  for (uint64_t s : r.seeds) seeds.push_back(seed_to_hex(s));
  return {{"task", spec.id},
          {"round", r.id},
          {"state", round_state_name(r.state)},
          {"base_version", r.base_version},
          {"tau", r.seeds.size()},
          {"seeds", seeds},
          {"lr", spec.lr},
          {"eps", spec.eps},
          {"batch_size", spec.batch_size},
          {"dist", distribution_name(spec.dist)},
          {"trainable", spec.trainable},
          {"deadline_ms", r.deadline_ms},
          {"server_time_ms", now},
          {"submissions", r.submissions.size()}};
}

}  // namespace

HttpResponse Service::handle(const HttpRequest& req) {
  std::mutex m;
  std::condition_variable cv;
  bool ready = false;
  HttpResponse out;
  handle_async(req, [&](HttpResponse r) {
    std::lock_guard<std::mutex> lock(m);
    out = std::move(r);
    ready = true;
    cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(m);
  cv.wait(lock, [&] { return ready; });
  return out;
}

void Service::handle_async(const HttpRequest& req, Done done) {
  const auto start = std::chrono::steady_clock::now();
  std::string raw_path = req.target, raw_query;
  if (const size_t q = req.target.find('?'); q != std::string::npos) {
    raw_path = req.target.substr(0, q);
    raw_query = req.target.substr(q + 1);
  }
  HttpResponse resp;
  std::map<std::string, std::string> query;
  bool bad_query = false;
  size_t i = 0;
  while (i < raw_query.size()) {
    size_t j = raw_query.find('&', i);
    if (j == std::string::npos) j = raw_query.size();
    const std::string kv = raw_query.substr(i, j - i);
    const size_t eq = kv.find('=');
    std::string k, v;
    if (!url_decode(kv.substr(0, eq), &k) || (eq != std::string::npos && !url_decode(kv.substr(eq + 1), &v))) bad_query = true;
    if (!k.empty()) query[k] = v;
    i = j + 1;
  }
  // Metrics observe the reply whenever it is sent (after a group commit for submissions).
  Done observed = [this, start, done = std::move(done)](HttpResponse r) {
    metrics_.observe_request(r.route, r.status, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    done(std::move(r));
  };
  std::string path;
  if (bad_query || !url_decode(raw_path, &path) || path.empty() || path[0] != '/') {
    resp = error(400, "bad_target", "the request target is not a valid path and query");
  } else {
    resp = route(req, path, query, observed);
  }
  if (resp.status != 0) observed(std::move(resp));  // 0: kept, answered after the commit
}

Service::Auth Service::authenticate(const HttpRequest& req) {
  Auth a;
  const std::string prefix = "Bearer ";
  if (req.authorization.compare(0, prefix.size(), prefix) != 0) {
    a.error = "missing or malformed Authorization: Bearer credential";
    return a;
  }
  const std::string token = req.authorization.substr(prefix.size());
  if (token.size() > 512) {
    a.error = "credential too long";
    return a;
  }
  const std::string hash = sha256_hex(token);
  if (same_secret(hash, opt_.admin_token_sha256)) {
    a.caller = Caller::kAdmin;
    return a;
  }
  // Device credential: "<device id>.<secret>".
  const size_t dot = token.find('.');
  if (dot == std::string::npos) {
    a.error = "unknown credential";
    return a;
  }
  const std::string id = token.substr(0, dot);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = devices_.find(id);
  if (it == devices_.end() || !same_secret(sha256_hex(token.substr(dot + 1)), it->second.secret_sha256)) {
    a.error = "unknown credential";
    return a;
  }
  if (it->second.revoked) {
    a.status = 403;
    a.error = "device " + id + " is revoked";
    return a;
  }
  a.caller = Caller::kDevice;
  a.device = id;
  return a;
}

HttpResponse Service::route(const HttpRequest& req, const std::string& path, const std::map<std::string, std::string>& query,
                            Done& done) {
  const std::vector<std::string> p = split_path(path);
  const std::string& m = req.method;
  auto with_route = [](HttpResponse r, const char* route) {
    r.route = route;
    return r;
  };
  if (p.size() == 1 && p[0] == "healthz" && m == "GET") {
    HttpResponse r = json_response(200, {{"status", "ok"}});
    return with_route(r, "/healthz");
  }
  if (p.size() == 1 && p[0] == "readyz" && m == "GET") {
    std::lock_guard<std::mutex> lock(mu_);
    return with_route(json_response(store_ ? 200 : 503, {{"status", store_ ? "ready" : "no store"}, {"tasks", tasks_.size()}}), "/readyz");
  }
  if (p.size() == 1 && p[0] == "metrics" && m == "GET") return with_route(render_metrics(), "/metrics");
  if (p.empty() || p[0] != "v1") return with_route(error(404, "not_found", "no such endpoint: " + path), "other");

  // Enrolment is the one /v1 call without a credential: the one-time token is in the body.
  if (p.size() == 2 && p[1] == "enrol") {
    if (m != "POST") return with_route(error(405, "method_not_allowed", "use POST"), "/v1/enrol");
    return with_route(enrol(req.body), "/v1/enrol");
  }
  Auth auth = authenticate(req);
  if (auth.caller == Caller::kNone) {
    HttpResponse r = error(auth.status, auth.status == 403 ? "revoked" : "unauthenticated", auth.error);
    if (auth.status == 401) r.headers.emplace_back("WWW-Authenticate", "Bearer");
    return with_route(r, "auth");
  }
  if (auth.caller == Caller::kDevice) {
    double retry = 0;
    const double now_s = static_cast<double>(now_ms()) / 1000.0;
    if (!limiter_->allow(auth.device, now_s, &retry)) {
      HttpResponse r = error(429, "rate_limited", "too many requests from this device; retry later");
      r.headers.emplace_back("Retry-After", std::to_string(static_cast<int>(std::ceil(retry))));
      return with_route(r, "rate_limited");
    }
  }
  const bool admin = auth.caller == Caller::kAdmin;
  auto need_admin = [&](const char* route) { return with_route(error(403, "forbidden", "this endpoint needs the admin credential"), route); };
  auto method_is = [&](const char* want, const char* route, HttpResponse* out) {
    if (m == want) return true;
    *out = with_route(error(405, "method_not_allowed", std::string("use ") + want), route);
    return false;
  };
  HttpResponse out;
  if (p.size() >= 2 && p[1] == "admin") {
    if (p.size() == 3 && p[2] == "tasks") {
      if (!method_is("POST", "/v1/admin/tasks", &out)) return out;
      return admin ? with_route(create_task(req.body), "/v1/admin/tasks") : need_admin("/v1/admin/tasks");
    }
    if (p.size() == 3 && p[2] == "enrolment-tokens") {
      if (!method_is("POST", "/v1/admin/enrolment-tokens", &out)) return out;
      return admin ? with_route(create_enrol_token(req.body), "/v1/admin/enrolment-tokens") : need_admin("/v1/admin/enrolment-tokens");
    }
    if (p.size() == 5 && p[2] == "devices" && p[4] == "revoke") {
      if (!method_is("POST", "/v1/admin/devices/{id}/revoke", &out)) return out;
      return admin ? with_route(revoke(p[3]), "/v1/admin/devices/{id}/revoke") : need_admin("/v1/admin/devices/{id}/revoke");
    }
    if (p.size() == 7 && p[2] == "tasks" && p[4] == "rounds" && p[6] == "close") {
      if (!method_is("POST", "/v1/admin/tasks/{task}/rounds/{round}/close", &out)) return out;
      return admin ? with_route(close_round(p[3], p[5]), "/v1/admin/tasks/{task}/rounds/{round}/close")
                   : need_admin("/v1/admin/tasks/{task}/rounds/{round}/close");
    }
    if (p.size() == 6 && p[2] == "tasks" && p[4] == "rounds") {
      if (!method_is("GET", "/v1/admin/tasks/{task}/rounds/{round}", &out)) return out;
      return admin ? with_route(get_round(p[3], p[5], true), "/v1/admin/tasks/{task}/rounds/{round}")
                   : need_admin("/v1/admin/tasks/{task}/rounds/{round}");
    }
    return with_route(error(404, "not_found", "no such endpoint: " + path), "other");
  }
  if (p.size() == 2 && p[1] == "tasks") {
    if (!method_is("GET", "/v1/tasks", &out)) return out;
    return with_route(list_tasks(), "/v1/tasks");
  }
  if (p.size() >= 3 && p[1] == "tasks") {
    const std::string& task = p[2];
    if (p.size() == 3) {
      if (!method_is("GET", "/v1/tasks/{task}", &out)) return out;
      return with_route(get_task(task), "/v1/tasks/{task}");
    }
    if (p.size() == 4 && p[3] == "round") {
      if (!method_is("GET", "/v1/tasks/{task}/round", &out)) return out;
      return with_route(get_round(task, "current", false), "/v1/tasks/{task}/round");
    }
    if (p.size() == 5 && p[3] == "rounds") {
      if (!method_is("GET", "/v1/tasks/{task}/rounds/{round}", &out)) return out;
      return with_route(get_round(task, p[4], false), "/v1/tasks/{task}/rounds/{round}");
    }
    if (p.size() == 6 && p[3] == "rounds" && p[5] == "submissions") {
      if (!method_is("POST", "/v1/tasks/{task}/rounds/{round}/submissions", &out)) return out;
      if (admin) return with_route(error(403, "forbidden", "submissions come from devices, not the admin"), "/v1/tasks/{task}/rounds/{round}/submissions");
      HttpResponse r = submit(task, p[4], auth.device, req.body, done);
      if (r.status == 0) return r;  // deferred: its reply carries the route already
      return with_route(r, "/v1/tasks/{task}/rounds/{round}/submissions");
    }
    if (p.size() == 4 && p[3] == "log") {
      if (!method_is("GET", "/v1/tasks/{task}/log", &out)) return out;
      return with_route(get_log(task, query), "/v1/tasks/{task}/log");
    }
    if (p.size() == 4 && p[3] == "snapshot") {
      if (!method_is("GET", "/v1/tasks/{task}/snapshot", &out)) return out;
      return with_route(get_snapshot(task, query), "/v1/tasks/{task}/snapshot");
    }
  }
  return with_route(error(404, "not_found", "no such endpoint: " + path), "other");
}

namespace {
// Parses a JSON object body, or says precisely why not.
bool parse_body(const std::string& body, json* out, HttpResponse* err) {
  *out = json::parse(body, nullptr, false);
  if (out->is_discarded()) {
    *err = error(400, "malformed_json", "the body is not valid JSON");
    return false;
  }
  if (!out->is_object()) {
    *err = error(400, "malformed_json", "the body must be a JSON object");
    return false;
  }
  return true;
}
}  // namespace

HttpResponse Service::create_task(const std::string& body) {
  json j;
  HttpResponse err;
  if (!parse_body(body, &j, &err)) return err;
  auto spec = parse_task_spec(j);
  if (!spec) return error(422, "invalid_task", spec.status().message());
  StoredTask stored;
  stored.id = spec->id;
  stored.spec_json = task_spec_to_json(spec.value()).dump();
  uint64_t key = spec->seed_key;
  if (!spec->has_seed_key) seed_from_hex(random_hex(8), &key);
  stored.seed_key = key;
  std::lock_guard<std::mutex> lock(mu_);
  stored.created_ms = now_ms();
  if (tasks_.count(stored.id)) return error(409, "task_exists", "task " + stored.id + " already exists");
  auto task = std::make_unique<Task>(spec.value(), stored);
  if (!spec->base_weights.empty()) {
    auto file = SafetensorsFile::open(spec->base_weights);
    if (!file) return error(422, "invalid_task", "task.base_weights: " + file.status().message());
  }
  auto first = task->rounds.open_round(stored.created_ms);
  if (!first) return error(422, "invalid_task", first.status().message());
  std::lock_guard<std::mutex> store_lock(store_mu_);
  Status saved = store_->insert_task(stored, first.value());
  if (!saved) return error(503, "store_unavailable", "the task was not saved; retry");
  Status loaded = load_task(stored);  // the one path that builds a task, snapshots included
  if (!loaded) return error(500, "internal", loaded.message());
  log("task " + stored.id + " created");
  json out = task_spec_to_json(spec.value());
  out["version"] = 0;
  out["round"] = 1;
  return json_response(201, out);
}

HttpResponse Service::create_enrol_token(const std::string& body) {
  json j;
  HttpResponse err;
  if (!parse_body(body.empty() ? std::string("{}") : body, &j, &err)) return err;
  double uses = 1, ttl = 86400;
  if (j.contains("uses") && (!j["uses"].is_number_integer() || j["uses"].get<double>() < 1 || j["uses"].get<double>() > 1e6))
    return error(422, "invalid_field", "uses must be an integer in [1, 1000000]");
  if (j.contains("uses")) uses = j["uses"].get<double>();
  if (j.contains("ttl_seconds") && (!j["ttl_seconds"].is_number() || !(j["ttl_seconds"].get<double>() >= 1) || j["ttl_seconds"].get<double>() > 365.0 * 86400))
    return error(422, "invalid_field", "ttl_seconds must be a number in [1, 31536000]");
  if (j.contains("ttl_seconds")) ttl = j["ttl_seconds"].get<double>();
  const std::string token = "et_" + random_hex(24);
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = now_ms();
  const int64_t expires = now + static_cast<int64_t>(ttl * 1000);
  std::lock_guard<std::mutex> store_lock(store_mu_);
  Status s = store_->insert_enrol_token(sha256_hex(token), static_cast<uint32_t>(uses), expires, now);
  if (!s) return error(503, "store_unavailable", "the token was not saved; retry");
  return json_response(201, {{"token", token}, {"uses", static_cast<uint32_t>(uses)}, {"expires_ms", expires}});
}

HttpResponse Service::enrol(const std::string& body) {
  json j;
  HttpResponse err;
  if (!parse_body(body, &j, &err)) return err;
  if (!j.contains("token") || !j["token"].is_string() || j["token"].get<std::string>().size() > 256)
    return error(400, "invalid_field", "token (string) is required");
  StoredDevice d;
  d.id = "d_" + random_hex(8);
  const std::string secret = random_hex(32);
  d.secret_sha256 = sha256_hex(secret);
  std::lock_guard<std::mutex> lock(mu_);
  d.created_ms = now_ms();
  std::lock_guard<std::mutex> store_lock(store_mu_);
  Status s = store_->enrol_device(sha256_hex(j["token"].get<std::string>()), d, d.created_ms);
  if (s.code() == StatusCode::kNotFound) return error(401, "invalid_enrolment_token", s.message());
  if (!s) return error(503, "store_unavailable", "enrolment was not saved; retry");
  devices_[d.id] = {d.secret_sha256, false};
  log("device " + d.id + " enrolled");
  return json_response(201, {{"device_id", d.id}, {"credential", d.id + "." + secret}});
}

HttpResponse Service::revoke(const std::string& device) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = devices_.find(device);
  if (it == devices_.end()) return error(404, "unknown_device", "no device " + device);
  std::lock_guard<std::mutex> store_lock(store_mu_);
  Status s = store_->revoke_device(device, now_ms());
  if (!s) return error(503, "store_unavailable", "the revocation was not saved; retry");
  it->second.revoked = true;
  log("device " + device + " revoked");
  return json_response(200, {{"device_id", device}, {"revoked", true}});
}

HttpResponse Service::list_tasks() {
  std::lock_guard<std::mutex> lock(mu_);
  json tasks = json::array();
  for (const auto& [id, t] : tasks_) tasks.push_back({{"id", id}, {"version", t->rounds.version()}, {"round", t->rounds.current() ? t->rounds.current()->id : 0}});
  return json_response(200, {{"tasks", tasks}});
}

HttpResponse Service::get_task(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tasks_.find(id);
  if (it == tasks_.end()) return error(404, "unknown_task", "no task " + id);
  const Task& t = *it->second;
  json out = task_spec_to_json(t.spec);
  out.erase("base_weights");  // a server path: not the devices' business
  out["version"] = t.rounds.version();
  out["round"] = t.rounds.current() ? t.rounds.current()->id : 0;
  out["snapshots"] = t.has_weights;
  return json_response(200, out);
}

HttpResponse Service::close_round(const std::string& task, const std::string& round) {
  uint64_t id = 0;
  if (!parse_u64(round, &id)) return error(400, "bad_round", "round must be a number");
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tasks_.find(task);
    if (it == tasks_.end()) return error(404, "unknown_task", "no task " + task);
    Status s = it->second->rounds.close_now(id, now_ms());
    if (s.code() == StatusCode::kNotFound) return error(404, "unknown_round", s.message());
    if (!s) return error(409, "round_closed", s.message());
    tick_task(*it->second, now_ms());
  }
  return get_round(task, round, true);
}

HttpResponse Service::get_round(const std::string& task, const std::string& round, bool admin) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tasks_.find(task);
  if (it == tasks_.end()) return error(404, "unknown_task", "no task " + task);
  const Task& t = *it->second;
  const Round* r = nullptr;
  uint64_t id = 0;
  if (round == "current") r = t.rounds.current();
  else if (parse_u64(round, &id)) r = t.rounds.round(id);
  else return error(400, "bad_round", "round must be a number");
  if (!r) return error(404, "unknown_round", "no round " + round + " in task " + task);
  json out = round_json(t.spec, *r, now_ms());
  if (r->state == RoundState::kApplied) {
    // The versions this round's entries occupy: the next round's base is where they end.
    const Round* next = t.rounds.round(r->id + 1);
    out["applied_version"] = next ? next->base_version : t.rounds.version();
  }
  if (admin) {
    json subs = json::array();
    for (const auto& [device, s] : r->submissions) {
      json c = json::array();
      for (float v : s.coeffs) c.push_back(static_cast<double>(v));
      subs.push_back({{"device", device}, {"coeffs", c}, {"examples", s.examples}, {"base_version", s.base_version}, {"weight", s.weight}});
    }
    out["submission_list"] = subs;
    out["extensions"] = r->extensions;
  }
  return json_response(200, out);
}

HttpResponse submission_reply(int status, const StoredSubmission& x, size_t submissions_in_round) {
  HttpResponse r = status == 503 ? error(503, "store_unavailable", "the submission was not saved; retry")
                                 : json_response(status, {{"task", x.task},
                                                          {"round", x.round},
                                                          {"accepted", true},
                                                          {"duplicate", status == 200},
                                                          {"weight", x.submission.weight},
                                                          {"submissions", submissions_in_round}});
  r.route = "/v1/tasks/{task}/rounds/{round}/submissions";
  return r;
}

HttpResponse Service::submit(const std::string& task, const std::string& round, const std::string& device, const std::string& body,
                             Done& done) {
  auto reject = [&](int status, const std::string& code, const std::string& message) {
    metrics_.count_submission(code);
    return error(status, code, message);
  };
  json j;
  HttpResponse err;
  if (!parse_body(body, &j, &err)) {
    metrics_.count_submission("malformed_json");
    return err;
  }
  uint64_t round_id = 0;
  if (!parse_u64(round, &round_id)) return reject(400, "bad_round", "round must be a number");
  for (auto it = j.begin(); it != j.end(); ++it)
    if (it.key() != "coeffs" && it.key() != "examples" && it.key() != "base_version" && it.key() != "loss")
      return reject(400, "unknown_field", "unknown field " + it.key());
  if (!j.contains("coeffs") || !j["coeffs"].is_array()) return reject(400, "wrong_type", "coeffs (array of numbers) is required");
  if (!j.contains("examples") || !j["examples"].is_number_unsigned()) return reject(400, "wrong_type", "examples (a positive integer) is required");
  if (!j.contains("base_version") || !j["base_version"].is_number_unsigned())
    return reject(400, "wrong_type", "base_version (the log version the scalars were computed from) is required");
  Submission s;
  s.device = device;
  s.examples = j["examples"].get<uint64_t>();
  s.base_version = j["base_version"].get<uint64_t>();
  if (j["coeffs"].size() > 256) return reject(422, "wrong_count", "more scalars than any round has seeds");
  for (const auto& v : j["coeffs"]) {
    if (!v.is_number()) return reject(400, "wrong_type", "coeffs must hold numbers only");
    const double d = v.get<double>();
    if (!std::isfinite(d) || std::fabs(d) > std::numeric_limits<float>::max()) return reject(422, "non_finite", "a scalar is not a finite float32");
    s.coeffs.push_back(static_cast<float>(d));
  }
  if (s.examples == 0 || s.examples > (uint64_t{1} << 40)) return reject(422, "bad_examples", "examples must be in [1, 2^40]");
  json stats = json::object();
  if (j.contains("loss")) {
    if (!j["loss"].is_object() || j["loss"].size() > 8) return reject(400, "wrong_type", "loss must be an object of at most 8 numbers");
    for (auto it = j["loss"].begin(); it != j["loss"].end(); ++it) {
      if (!it.value().is_number() || !std::isfinite(it.value().get<double>()) || it.key().size() > 32)
        return reject(422, "non_finite", "loss." + it.key() + " must be a finite number");
    }
    stats = j["loss"];
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tasks_.find(task);
  if (it == tasks_.end()) return reject(404, "unknown_task", "no task " + task);
  Task& t = *it->second;
  auto outcome = t.rounds.submit(round_id, s);
  if (!outcome) {
    const Status& st = outcome.status();
    const Round* r = t.rounds.round(round_id);
    if (st.code() == StatusCode::kNotFound) return reject(404, "unknown_round", st.message());
    if (st.code() == StatusCode::kMismatch) {
      const bool closed = r && r->state != RoundState::kOpen;
      HttpResponse resp = reject(409, closed ? "round_closed" : (st.message().find("behind") != std::string::npos || st.message().find("ahead") != std::string::npos ? "stale_base" : "conflicting_resubmission"), st.message());
      json body_json = json::parse(resp.body);
      if (t.rounds.current()) body_json["current_round"] = t.rounds.current()->id;
      body_json["version"] = t.rounds.version();
      resp.body = body_json.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
      return resp;
    }
    return reject(422, s.coeffs.size() != (r ? r->seeds.size() : 0) ? "wrong_count" : "invalid_submission", st.message());
  }
  const Round& r = *t.rounds.round(round_id);
  const PendingKey key{task, round_id, device};
  if (outcome.value() == SubmitOutcome::kAccepted) {
    // Held in memory, answered once the group commit that carries it is durable.
    pending_[key].push_back(std::move(done));
    {
      std::lock_guard<std::mutex> qlock(queue_mu_);
      queue_.push_back(StoredSubmission{task, round_id, r.submissions.at(device), stats.dump(), now_ms()});
    }
    queue_cv_.notify_one();
    HttpResponse deferred;
    deferred.status = 0;
    return deferred;
  }
  if (auto p = pending_.find(key); p != pending_.end()) {  // the same submission, not yet durable: wait with it
    p->second.push_back(std::move(done));
    HttpResponse deferred;
    deferred.status = 0;
    return deferred;
  }
  metrics_.count_submission("duplicate");
  return submission_reply(200, StoredSubmission{task, round_id, r.submissions.at(device), "", 0}, r.submissions.size());
}

HttpResponse Service::get_log(const std::string& task, const std::map<std::string, std::string>& query) {
  uint64_t since = 0, limit = 1000;
  if (query.count("since") && !parse_u64(query.at("since"), &since)) return error(400, "bad_query", "since must be a version number");
  if (query.count("limit") && (!parse_u64(query.at("limit"), &limit) || limit == 0))
    return error(400, "bad_query", "limit must be a positive number");
  limit = std::min<uint64_t>(limit, opt_.max_log_page);
  const std::string format = query.count("format") ? query.at("format") : "json";
  if (format != "json" && format != "binary") return error(400, "bad_query", "format must be json or binary");
  UpdateLog page;
  uint64_t version = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tasks_.find(task);
    if (it == tasks_.end()) return error(404, "unknown_task", "no task " + task);
    version = it->second->rounds.version();
    if (since > version) return error(416, "beyond_log", "since " + std::to_string(since) + " is beyond the log's version " + std::to_string(version));
    page = it->second->rounds.log().slice(since, since + limit);
  }
  const uint64_t next = since + page.size();
  if (format == "binary") {
    HttpResponse r;
    r.content_type = "application/octet-stream";
    r.body = page.to_binary();
    r.headers.emplace_back("X-Pocketllm-Version", std::to_string(version));
    r.headers.emplace_back("X-Pocketllm-Since", std::to_string(since));
    r.headers.emplace_back("X-Pocketllm-Next", std::to_string(next));
    return r;
  }
  json entries = json::array();
  for (const auto& e : page.entries()) entries.push_back({{"seed", seed_to_hex(e.seed)}, {"coeff", static_cast<double>(e.coeff)}});
  return json_response(200, {{"task", task}, {"version", version}, {"since", since}, {"next", next}, {"complete", next == version}, {"entries", entries}});
}

HttpResponse Service::get_snapshot(const std::string& task, const std::map<std::string, std::string>& query) {
  Task* t = nullptr;
  std::vector<UpdateEntry> entries;
  uint64_t version = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tasks_.find(task);
    if (it == tasks_.end()) return error(404, "unknown_task", "no task " + task);
    t = it->second.get();
    if (!t->has_weights)
      return error(404, "no_snapshots", "this server holds no base weights for task " + task +
                                            (t->weights_problem.empty() ? "" : " (" + t->weights_problem + ")"));
    version = t->rounds.version();
    if (query.count("version") && !parse_u64(query.at("version"), &version)) return error(400, "bad_query", "version must be a number");
    if (version > t->rounds.version()) return error(416, "beyond_log", "version " + std::to_string(version) + " does not exist yet");
    entries.assign(t->rounds.log().entries().begin(), t->rounds.log().entries().begin() + static_cast<long>(version));
  }
  // Tasks are never removed, so t stays valid; snapshot work does not hold the service lock.
  std::lock_guard<std::mutex> lock(t->snapshot_mu);
  std::vector<std::vector<float>> scratch;
  std::vector<std::vector<float>>* tensors = &t->cache;
  uint64_t from = t->cache_version;
  if (version < t->cache_version) {  // an old version: materialise it aside, keep the cache at the head
    scratch = t->base;
    tensors = &scratch;
    from = 0;
  }
  std::vector<NamedTensor> named;
  for (size_t i = 0; i < t->names.size(); ++i) named.push_back({t->names[i], (*tensors)[i].data(), (*tensors)[i].size()});
  replay_entries(pool_.get(), t->spec.dist, entries.data() + from, version - from, named);
  if (tensors == &t->cache) t->cache_version = version;
  std::vector<TensorToWrite> out;
  for (size_t i = 0; i < t->names.size(); ++i) out.push_back({t->names[i], DType::kF32, t->shapes[i], (*tensors)[i].data()});
  auto bytes = serialize_safetensors(out, {{"format", "pocketllm.snapshot"}, {"task", task}, {"version", std::to_string(version)},
                                           {"base_model_id", t->spec.base_model_id}});
  if (!bytes) return error(500, "internal", bytes.status().message());
  HttpResponse r;
  r.content_type = "application/octet-stream";
  r.body = std::move(bytes.value());
  r.headers.emplace_back("X-Pocketllm-Version", std::to_string(version));
  r.headers.emplace_back("X-Pocketllm-Sha256", sha256_hex(r.body));
  return r;
}

HttpResponse Service::render_metrics() {
  std::vector<std::pair<std::string, double>> gauges;
  {
    std::lock_guard<std::mutex> lock(mu_);
    size_t revoked = 0;
    for (const auto& [id, d] : devices_) revoked += d.revoked;
    gauges.emplace_back("pocketllm_devices{state=\"active\"}", static_cast<double>(devices_.size() - revoked));
    gauges.emplace_back("pocketllm_devices{state=\"revoked\"}", static_cast<double>(revoked));
    for (const auto& [id, t] : tasks_) gauges.emplace_back("pocketllm_task_version{task=\"" + id + "\"}", static_cast<double>(t->rounds.version()));
    for (const auto& [id, t] : tasks_)
      gauges.emplace_back("pocketllm_task_round{task=\"" + id + "\"}", t->rounds.current() ? static_cast<double>(t->rounds.current()->id) : 0.0);
    for (const auto& [id, t] : tasks_)
      gauges.emplace_back("pocketllm_round_submissions{task=\"" + id + "\"}",
                          t->rounds.current() ? static_cast<double>(t->rounds.current()->submissions.size()) : 0.0);
  }
  HttpResponse r;
  r.content_type = "text/plain; version=0.0.4";
  r.body = metrics_.render(gauges);
  return r;
}

}  // namespace pocketllm::server
