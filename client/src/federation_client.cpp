#include "pocketllm/client/federation_client.h"

#include <sys/stat.h>

#include <chrono>
#include <random>
#include <thread>

#include "pocketllm/common/file_util.h"
#include "pocketllm/common/sha256.h"

namespace pocketllm {
namespace {

using nlohmann::json;

class HttpsTransport : public Transport {
 public:
  explicit HttpsTransport(std::unique_ptr<net::HttpClient> c) : c_(std::move(c)) {}
  Result<net::HttpResult> request(const std::string& method, const std::string& target, const std::string& body,
                                  const std::string& bearer) override {
    return c_->request(method, target, body, bearer);
  }
  uint64_t bytes_sent() const override { return c_->bytes_sent(); }
  uint64_t bytes_received() const override { return c_->bytes_received(); }
  void disconnect() override { c_->close(); }

 private:
  std::unique_ptr<net::HttpClient> c_;
};

Status server_error(const net::HttpResult& r, const std::string& what) {
  std::string message = "HTTP " + std::to_string(r.status);
  json j = json::parse(r.body, nullptr, false);
  if (!j.is_discarded() && j.contains("error") && j["error"].is_object())
    message = j["error"].value("code", std::string("?")) + ": " + j["error"].value("message", std::string());
  const StatusCode code = r.status == 404 ? StatusCode::kNotFound
                          : (r.status == 401 || r.status == 403 || r.status == 409) ? StatusCode::kMismatch
                                                                                     : StatusCode::kInvalidArgument;
  return {code, what + ": " + message};
}

template <class T>
bool get(const json& j, const char* key, T* out) {
  if (!j.contains(key)) return false;
  try {
    *out = j.at(key).get<T>();
    return true;
  } catch (const json::exception&) {
    return false;
  }
}

}  // namespace

std::unique_ptr<Transport> make_https_transport(std::unique_ptr<net::HttpClient> client) {
  return std::make_unique<HttpsTransport>(std::move(client));
}

Result<std::unique_ptr<FederationClient>> FederationClient::open(const ServerConnection& s, const std::string& credentials_file,
                                                                 const std::string& enrolment_token) {
  net::ClientOptions o;
  o.url = s.url;
  o.ca_file = s.ca_file;
  o.pinned_sha256 = s.pinned_sha256;
  o.connect_timeout_ms = s.timeout_ms;
  o.io_timeout_ms = s.timeout_ms;
  auto client = net::HttpClient::create(o);
  if (!client) return client.status();
  return open(make_https_transport(std::move(client.value())), s.url, credentials_file, enrolment_token, s.retries, s.backoff_ms);
}

Result<std::unique_ptr<FederationClient>> FederationClient::open(std::unique_ptr<Transport> transport, const std::string& url,
                                                                 const std::string& credentials_file, const std::string& token,
                                                                 int retries, int backoff_ms) {
  std::unique_ptr<FederationClient> c(new FederationClient(std::move(transport), retries, backoff_ms));
  auto text = credentials_file.empty() ? Result<std::string>(not_found("no file")) : read_file(credentials_file, 1 << 16);
  if (text) {
    json j = json::parse(text.value(), nullptr, false);
    std::string server;
    if (j.is_discarded() || !get(j, "device_id", &c->device_id_) || !get(j, "credential", &c->credential_) || !get(j, "server", &server))
      return corrupt(credentials_file + ": not a pocketllm device credential file");
    if (!url.empty() && server != url)
      return mismatch(credentials_file + " holds a credential for " + server + ", not " + url + "; use another file or enrol again");
    return c;
  }
  if (text.status().code() != StatusCode::kNotFound && text.status().code() != StatusCode::kIoError) return text.status();
  if (token.empty()) return invalid_argument("no credential in " + credentials_file + " and no enrolment token to get one");
  auto r = c->call("POST", "/v1/enrol", json{{"token", token}}.dump(), true);
  if (!r) return r.status();
  if (r->status != 201) return server_error(r.value(), "enrolment");
  json j = json::parse(r->body, nullptr, false);
  if (j.is_discarded() || !get(j, "device_id", &c->device_id_) || !get(j, "credential", &c->credential_))
    return corrupt("enrolment: unexpected reply");
  if (credentials_file.empty()) return c;  // kept in memory only (simulated devices)
  const std::string file = json{{"server", url}, {"device_id", c->device_id_}, {"credential", c->credential_}}.dump() + "\n";
  POCKETLLM_RETURN_IF_ERROR(write_file_atomic(credentials_file, file));
  ::chmod(credentials_file.c_str(), 0600);
  return c;
}

Result<net::HttpResult> FederationClient::call(const std::string& method, const std::string& target, const std::string& body, bool retry) {
  std::mt19937_64 jitter(std::hash<std::string>{}(device_id_ + target));
  int delay = backoff_ms_;
  Status last;
  for (int attempt = 0; attempt <= (retry ? retries_ : 0); ++attempt) {
    if (attempt > 0) {
      const int wait = delay / 2 + static_cast<int>(jitter() % static_cast<uint64_t>(delay / 2 + 1));
      std::this_thread::sleep_for(std::chrono::milliseconds(wait));
      delay = std::min(delay * 2, 30000);
    }
    if (observer_) observer_(method, target, body);
    auto r = transport_->request(method, target, body, credential_);
    if (!r) {
      last = r.status();
      if (r.status().code() == StatusCode::kMismatch) return r.status();  // a certificate problem will not go away
      transport_->disconnect();
      continue;
    }
    if (r->status >= 500 || r->status == 429) {
      last = server_error(r.value(), method + " " + target);
      if (r->status == 429) {
        const std::string after = r->header("retry-after");
        if (!after.empty()) delay = std::max(delay, 1000 * std::atoi(after.c_str()));
      }
      continue;
    }
    return r;
  }
  return io_error(method + " " + target + " failed after " + std::to_string(retries_ + 1) + " attempts: " + last.message());
}

Result<TaskInfo> FederationClient::task(const std::string& id) {
  auto r = call("GET", "/v1/tasks/" + id, "", true);
  if (!r) return r.status();
  if (r->status != 200) return server_error(r.value(), "task " + id);
  json j = json::parse(r->body, nullptr, false);
  TaskInfo t;
  std::string dist;
  if (j.is_discarded() || !get(j, "id", &t.id) || !get(j, "base_model_id", &t.base_model_id) || !get(j, "trainable", &t.trainable) ||
      !get(j, "dist", &dist) || !parse_distribution(dist, &t.dist) || !get(j, "lr", &t.lr) || !get(j, "eps", &t.eps) ||
      !get(j, "batch_size", &t.batch_size) || !get(j, "tau", &t.tau) || !get(j, "version", &t.version) || !get(j, "round", &t.round))
    return corrupt("task " + id + ": unexpected reply from the server");
  get(j, "snapshots", &t.snapshots);
  if (j.contains("device")) t.device = j["device"];
  return t;
}

Result<RoundInfo> FederationClient::round(const std::string& task, uint64_t id) {
  const std::string target = id == 0 ? "/v1/tasks/" + task + "/round" : "/v1/tasks/" + task + "/rounds/" + std::to_string(id);
  auto r = call("GET", target, "", true);
  if (!r) return r.status();
  if (r->status != 200) return server_error(r.value(), "round");
  json j = json::parse(r->body, nullptr, false);
  RoundInfo ri;
  std::string dist;
  std::vector<std::string> seeds;
  if (j.is_discarded() || !get(j, "task", &ri.task) || !get(j, "round", &ri.round) || !get(j, "state", &ri.state) ||
      !get(j, "base_version", &ri.base_version) || !get(j, "seeds", &seeds) || !get(j, "lr", &ri.lr) || !get(j, "eps", &ri.eps) ||
      !get(j, "batch_size", &ri.batch_size) || !get(j, "dist", &dist) || !parse_distribution(dist, &ri.dist) ||
      !get(j, "deadline_ms", &ri.deadline_ms))
    return corrupt("round: unexpected reply from the server");
  get(j, "server_time_ms", &ri.server_time_ms);
  get(j, "applied_version", &ri.applied_version);
  for (const auto& s : seeds) {
    uint64_t v;
    if (!seed_from_hex(s, &v)) return corrupt("round: bad seed " + s);
    ri.seeds.push_back(v);
  }
  return ri;
}

Result<SubmitReply> FederationClient::submit(const std::string& task, uint64_t round, const std::vector<float>& coeffs,
                                             uint64_t examples, uint64_t base_version, double mean_loss) {
  json c = json::array();
  for (float v : coeffs) c.push_back(static_cast<double>(v));
  json body = {{"coeffs", c}, {"examples", examples}, {"base_version", base_version}};
  if (std::isfinite(mean_loss)) body["loss"] = {{"mean", mean_loss}};
  auto r = call("POST", "/v1/tasks/" + task + "/rounds/" + std::to_string(round) + "/submissions", body.dump(), true);
  if (!r) return r.status();
  SubmitReply s;
  s.status = r->status;
  s.accepted = r->status == 200 || r->status == 201;
  json j = json::parse(r->body, nullptr, false);
  if (!s.accepted && !j.is_discarded() && j.contains("error") && j["error"].is_object()) {
    s.error_code = j["error"].value("code", std::string());
    s.message = j["error"].value("message", std::string());
    get(j, "current_round", &s.current_round);
  }
  return s;
}

Result<UpdateLog> FederationClient::log_since(const std::string& task, uint64_t since) {
  std::vector<UpdateEntry> entries;
  uint64_t at = since;
  for (;;) {
    auto r = call("GET", "/v1/tasks/" + task + "/log?format=binary&limit=10000&since=" + std::to_string(at), "", true);
    if (!r) return r.status();
    if (r->status != 200) return server_error(r.value(), "log");
    auto page = UpdateLog::from_binary(r->body);
    if (!page) return page.status();
    entries.insert(entries.end(), page->entries().begin(), page->entries().end());
    at += page->size();
    const uint64_t version = std::strtoull(r->header("x-pocketllm-version").c_str(), nullptr, 10);
    if (at >= version || page->empty()) break;
  }
  return UpdateLog(std::move(entries));
}

Result<std::string> FederationClient::snapshot(const std::string& task, uint64_t* version) {
  auto r = call("GET", "/v1/tasks/" + task + "/snapshot", "", true);
  if (!r) return r.status();
  if (r->status != 200) return server_error(r.value(), "snapshot");
  const std::string want = r->header("x-pocketllm-sha256");
  if (want.empty() || to_hex(sha256(r->body)) != want) return corrupt("snapshot: the body does not match its SHA-256");
  *version = std::strtoull(r->header("x-pocketllm-version").c_str(), nullptr, 10);
  return std::move(r->body);
}

}  // namespace pocketllm
