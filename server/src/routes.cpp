// The route table of the /v1 API (docs/protocol.md section 3) and the steps every request takes:
// target -> route -> authentication -> rate limit -> method -> access -> handler.
#include <chrono>
#include <cmath>
#include <condition_variable>

#include "http_util.h"
#include "service_internal.h"

namespace pocketllm::server {

using protocol::ErrorCode;

// One request being routed.
struct Service::Call {
  const HttpRequest& req;
  Target target;
  std::vector<std::string> params;  // the pattern's {placeholders}, in order
  Auth auth;
  Done& done;
  const std::string& param(size_t i) const { return params.at(i); }
};

enum class Access {
  kPublic,      // no credential (health, metrics, enrolment: its token is in the body)
  kAny,         // a device or the admin
  kAdmin,       // the admin credential
  kDeviceOnly,  // a device credential (submissions)
};

struct Service::Route {
  const char* method;
  const char* pattern;  // segments; "{name}" matches one segment. Also the metrics label.
  Access access;
  Reply (*handler)(Service&, Call&);
};

const std::vector<Service::Route>& Service::routes() {
  static const std::vector<Route> table = {
      {"GET", "/healthz", Access::kPublic, [](Service&, Call&) -> Reply { return json_response(200, {{"status", "ok"}}); }},
      {"GET", "/readyz", Access::kPublic,
       [](Service& s, Call&) -> Reply {
         std::lock_guard<std::mutex> lock(s.mu_);
         return json_response(s.store_ ? 200 : 503, {{"status", s.store_ ? "ready" : "no store"}, {"tasks", s.tasks_.size()}});
       }},
      {"GET", "/ui", Access::kPublic, [](Service&, Call&) -> Reply { return ui_page(); }},
      {"GET", "/ui/status.json", Access::kAdmin, [](Service& s, Call&) -> Reply { return s.ui_status(); }},
      {"GET", "/metrics", Access::kPublic, [](Service& s, Call& c) -> Reply { return s.metrics_for(c); }},
      {"POST", "/v1/enrol", Access::kPublic, [](Service& s, Call& c) -> Reply { return s.enrol_limited(c); }},
      {"POST", "/v1/admin/tasks", Access::kAdmin, [](Service& s, Call& c) -> Reply { return s.create_task(c.req.body); }},
      {"POST", "/v1/admin/enrolment-tokens", Access::kAdmin, [](Service& s, Call& c) -> Reply { return s.create_enrol_token(c.req.body); }},
      {"GET", "/v1/admin/devices", Access::kAdmin, [](Service& s, Call& c) -> Reply { return s.list_devices(c.target.query); }},
      {"POST", "/v1/admin/devices/{id}/revoke", Access::kAdmin, [](Service& s, Call& c) -> Reply { return s.revoke(c.param(0)); }},
      {"POST", "/v1/admin/tasks/{task}/rounds/{round}/close", Access::kAdmin,
       [](Service& s, Call& c) -> Reply {
         return s.close_round(c.param(0), c.param(1), c.target.query.count("phase") ? c.target.query.at("phase") : "");
       }},
      {"GET", "/v1/admin/tasks/{task}/rounds/{round}", Access::kAdmin,
       [](Service& s, Call& c) -> Reply { return s.get_round(c.param(0), c.param(1), true); }},
      {"GET", "/v1/tasks", Access::kAny, [](Service& s, Call&) -> Reply { return s.list_tasks(); }},
      {"GET", "/v1/tasks/{task}", Access::kAny, [](Service& s, Call& c) -> Reply { return s.get_task(c.param(0)); }},
      {"GET", "/v1/tasks/{task}/round", Access::kAny,
       [](Service& s, Call& c) -> Reply { return s.get_round(c.param(0), "current", false, c.auth.device); }},
      {"GET", "/v1/tasks/{task}/rounds/{round}", Access::kAny,
       [](Service& s, Call& c) -> Reply { return s.get_round(c.param(0), c.param(1), false, c.auth.device); }},
      {"POST", "/v1/tasks/{task}/rounds/{round}/submissions", Access::kDeviceOnly,
       [](Service& s, Call& c) -> Reply { return s.submit(c.param(0), c.param(1), c.auth.device, c.req.body, c.done); }},
      {"POST", "/v1/tasks/{task}/rounds/{round}/secagg/{step}", Access::kDeviceOnly,
       [](Service& s, Call& c) -> Reply { return s.secagg_post(c.param(0), c.param(1), c.param(2), c.auth.device, c.req.body); }},
      {"GET", "/v1/tasks/{task}/rounds/{round}/secagg/{step}", Access::kDeviceOnly,
       [](Service& s, Call& c) -> Reply { return s.secagg_get(c.param(0), c.param(1), c.param(2), c.auth.device); }},
      {"GET", "/v1/tasks/{task}/log", Access::kAny, [](Service& s, Call& c) -> Reply { return s.get_log(c.param(0), c.target.query); }},
      {"GET", "/v1/tasks/{task}/snapshot", Access::kAny,
       [](Service& s, Call& c) -> Reply { return s.get_snapshot(c.param(0), c.target.query, c.done); }},
  };
  return table;
}

std::vector<std::pair<std::string, std::string>> Service::route_list() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const Route& r : routes()) out.emplace_back(r.method, r.pattern);
  return out;
}

namespace {

// Whether `segments` match `pattern`; the {placeholders} go to `params`.
bool matches(const char* pattern, const std::vector<std::string>& segments, std::vector<std::string>* params) {
  size_t i = 0;
  params->clear();
  for (const char* p = pattern; *p;) {
    if (*p == '/') {
      ++p;
      continue;
    }
    const char* end = p;
    while (*end && *end != '/') ++end;
    if (i >= segments.size()) return false;
    const std::string seg(p, end);
    if (seg.front() == '{') params->push_back(segments[i]);
    else if (seg != segments[i]) return false;
    ++i;
    p = end;
  }
  return i == segments.size();
}

HttpResponse labelled(HttpResponse r, const char* route) {
  r.route = route;
  return r;
}

}  // namespace

Service::Reply Service::dispatch(Call& c) {
  // The route of this target and method; else the first of this target (answered 405).
  const Route* route = nullptr;
  for (const Route& r : routes()) {
    if (!matches(r.pattern, c.target.segments, &c.params)) continue;
    if (!route || c.req.method == r.method) route = &r;
    if (c.req.method == r.method) break;
  }
  if (route) matches(route->pattern, c.target.segments, &c.params);  // its own placeholders
  const bool v1 = !c.target.segments.empty() && c.target.segments[0] == "v1";
  if (!route || route->access != Access::kPublic) {
    if (!route && !v1) return labelled(error(ErrorCode::kNotFound, "no such endpoint: " + c.req.target.substr(0, c.req.target.find('?'))), "other");
    if (auto limited = refuse_if_guessing(c)) return labelled(*limited, "auth");
    c.auth = authenticate(c.req);
    if (c.auth.caller == Caller::kNone) {
      count_auth_failure(c);
      return labelled(error(c.auth.status == 403 ? ErrorCode::kRevoked : ErrorCode::kUnauthenticated, c.auth.error), "auth");
    }
    if (c.auth.caller == Caller::kDevice) {
      double retry = 0;
      if (!limiter_->allow(c.auth.device, static_cast<double>(now_ms()) / 1000.0, &retry)) {
        HttpResponse r = error(ErrorCode::kRateLimited, "too many requests from this device; retry later");
        r.headers.emplace_back("Retry-After", std::to_string(static_cast<int>(std::ceil(retry))));
        return labelled(r, "rate_limited");
      }
    }
    if (!route) return labelled(error(ErrorCode::kNotFound, "no such endpoint: " + c.req.target.substr(0, c.req.target.find('?'))), "other");
  }
  if (c.req.method != route->method) return labelled(error(ErrorCode::kMethodNotAllowed, std::string("use ") + route->method), route->pattern);
  const bool admin = c.auth.caller == Caller::kAdmin;
  if (route->access == Access::kAdmin && !admin)
    return labelled(error(ErrorCode::kForbidden, "this endpoint needs the admin credential"), route->pattern);
  if (route->access == Access::kDeviceOnly && admin)
    return labelled(error(ErrorCode::kForbidden, "submissions come from devices, not the admin"), route->pattern);
  Reply reply = route->handler(*this, c);
  if (reply) {
    reply->route = route->pattern;
    reply->authenticated = c.auth.caller != Caller::kNone;
  }
  return reply;
}

// Failed credentials and enrolment tokens are limited per address: a guesser gets 429 long before
// the secrets' size matters.
std::optional<HttpResponse> Service::refuse_if_guessing(const Call& c) {
  double retry = 0;
  if (!auth_failures_->exhausted(c.req.remote_address, static_cast<double>(now_ms()) / 1000.0, &retry)) return std::nullopt;
  HttpResponse r = error(ErrorCode::kRateLimited, "too many failed credentials from this address; retry later");
  r.headers.emplace_back("Retry-After", std::to_string(static_cast<int>(std::ceil(retry))));
  return r;
}

void Service::count_auth_failure(const Call& c) {
  auth_failures_->allow(c.req.remote_address, static_cast<double>(now_ms()) / 1000.0, nullptr);
}

Service::Reply Service::enrol_limited(Call& c) {
  if (auto limited = refuse_if_guessing(c)) return limited;
  HttpResponse r = enrol(c.req.body);
  if (r.status == 401) count_auth_failure(c);
  return r;
}

namespace {
bool loopback_peer(const std::string& address) {
  return address.empty() || address == "::1" || address.rfind("127.", 0) == 0 || address.rfind("::ffff:127.", 0) == 0;
}
}  // namespace

Service::Reply Service::metrics_for(Call& c) {
  if (opt_.metrics == MetricsExposure::kPublic || (opt_.metrics == MetricsExposure::kLoopback && loopback_peer(c.req.remote_address)))
    return render_metrics();
  if (auto limited = refuse_if_guessing(c)) return limited;
  if (authenticate(c.req).caller == Caller::kAdmin) return render_metrics();
  count_auth_failure(c);
  return error(ErrorCode::kForbidden, opt_.metrics == MetricsExposure::kAdmin ? "metrics need the admin credential"
                                                                               : "metrics are served to loopback peers and the admin");
}

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
  if (out.shared_body) out.body = *out.shared_body;  // in-process callers read the body
  return out;
}

void Service::handle_async(const HttpRequest& req, Done done) {
  const auto start = std::chrono::steady_clock::now();
  // Metrics observe the reply whenever it is sent (after a group commit for submissions).
  Done observed = [this, start, done = std::move(done)](HttpResponse r) {
    metrics_.observe_request(r.route, r.status, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    done(std::move(r));
  };
  Call call{req, {}, {}, {}, observed};
  if (!parse_target(req.target, &call.target)) return observed(error(ErrorCode::kBadTarget, "the request target is not a valid path and query"));
  Reply reply = dispatch(call);
  if (reply) observed(std::move(*reply));
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
  if (same_secret(sha256_hex(token), opt_.admin_token_sha256)) {
    a.caller = Caller::kAdmin;
    return a;
  }
  const size_t dot = token.find('.');  // a device credential: "<device id>.<secret>"
  std::lock_guard<std::mutex> lock(mu_);
  auto it = dot == std::string::npos ? devices_.end() : devices_.find(token.substr(0, dot));
  // Replicas: a device enrolled through another server is in the store.
  if (it == devices_.end() && dot != std::string::npos && dot > 0 && dot <= 128 && store_->shared() && find_device_in_store(token.substr(0, dot)))
    it = devices_.find(token.substr(0, dot));
  if (it == devices_.end() || !same_secret(sha256_hex(token.substr(dot + 1)), it->second.secret_sha256)) {
    a.error = "unknown credential";
    return a;
  }
  if (it->second.revoked) {
    a.status = 403;
    a.error = "device " + it->first + " is revoked";
    return a;
  }
  a.caller = Caller::kDevice;
  a.device = it->first;
  return a;
}

}  // namespace pocketllm::server
