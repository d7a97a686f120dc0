#include "pocketllm/federation/federation_client.h"

#include "pocketllm/common/cancel.h"
#include "pocketllm/common/json_util.h"

#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

#include "pocketllm/common/file_util.h"
#include "pocketllm/common/perturbation.h"
#include "pocketllm/common/sha256.h"

namespace pocketllm {
namespace {

using nlohmann::json;

Status server_error(const TransportReply& r, const std::string& what) {
  std::string message = "HTTP " + std::to_string(r.status);
  if (auto e = protocol::parse_error_reply(r.body)) message = e->code_name + ": " + e->message;
  const StatusCode code = r.status == 404 ? StatusCode::kNotFound
                          : (r.status == 401 || r.status == 403 || r.status == 409) ? StatusCode::kMismatch
                                                                                     : StatusCode::kInvalidArgument;
  return {code, what + ": " + message};
}

// The credential file: {"server", "device_id", "credential"}.
Status read_credentials(const std::string& text, const std::string& file, const std::string& url, std::string* device_id,
                        std::string* credential) {
  json j = parse_json(text);
  if (j.is_discarded() || !j.is_object() || !j.contains("device_id") || !j["device_id"].is_string() || !j.contains("credential") ||
      !j["credential"].is_string() || !j.contains("server") || !j["server"].is_string())
    return corrupt(file + ": not a pocketllm device credential file");
  const std::string server = j["server"].get<std::string>();
  if (!url.empty() && server != url)
    return mismatch(file + " holds a credential for " + server + ", not " + url + "; use another file or enrol again");
  *device_id = j["device_id"].get<std::string>();
  *credential = j["credential"].get<std::string>();
  return Status::ok();
}

}  // namespace

std::unique_ptr<FederationClient> FederationClient::with_credential(std::unique_ptr<Transport> transport, std::string device_id,
                                                                    std::string credential, RetryPolicy retry) {
  std::unique_ptr<FederationClient> c(new FederationClient(std::move(transport), retry));
  c->device_id_ = std::move(device_id);
  c->credential_ = std::move(credential);
  return c;
}

Result<std::unique_ptr<FederationClient>> FederationClient::open(std::unique_ptr<Transport> transport, const std::string& url,
                                                                 const std::string& credentials_file, const std::string& token,
                                                                 RetryPolicy retry) {
  std::unique_ptr<FederationClient> c(new FederationClient(std::move(transport), retry));
  auto text = credentials_file.empty() ? Result<std::string>(not_found("no file")) : read_file(credentials_file, 1 << 16);
  if (text) {
    POCKETLLM_RETURN_IF_ERROR(read_credentials(text.value(), credentials_file, url, &c->device_id_, &c->credential_));
    return c;
  }
  if (text.status().code() != StatusCode::kNotFound && text.status().code() != StatusCode::kIoError) return text.status();
  if (token.empty()) return invalid_argument("no credential in " + credentials_file + " and no enrolment token to get one");
  POCKETLLM_RETURN_IF_ERROR(c->enrol(token));
  if (credentials_file.empty()) return c;  // kept in memory only (simulated devices)
  const std::string file = json{{"server", url}, {"device_id", c->device_id_}, {"credential", c->credential_}}.dump() + "\n";
  std::error_code ec;  // its folder (often the device's state directory) is created private when missing
  const std::filesystem::path parent = std::filesystem::path(credentials_file).parent_path();
  if (!parent.empty() && !std::filesystem::exists(parent, ec)) {
    std::filesystem::create_directories(parent, ec);
    std::filesystem::permissions(parent, std::filesystem::perms::owner_all, ec);
  }
  POCKETLLM_RETURN_IF_ERROR(write_file_atomic(credentials_file, file, 0600));  // a secret: private from creation
  return c;
}

Status FederationClient::enrol(const std::string& token) {
  auto r = call("POST", protocol::enrol_path(), protocol::to_json(protocol::EnrolRequest{token}).dump(), true);
  if (!r) return r.status();
  if (r->status != 201) return server_error(r.value(), "enrolment");
  auto reply = protocol::parse_enrol_reply(r->body);
  if (!reply) return reply.status();
  device_id_ = reply->device_id;
  credential_ = reply->credential;
  return Status::ok();
}

namespace {
// A backoff wait that a cancelled caller does not sit through.
void sleep_cancellable(int ms) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < end) {
    throw_if_cancelled();
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(std::chrono::milliseconds(10), end - std::chrono::steady_clock::now()));
  }
}
}  // namespace

Result<TransportReply> FederationClient::call(const std::string& method, const std::string& target, const std::string& body, bool retry) {
  std::mt19937_64 jitter(tensor_tag(device_id_ + target));  // FNV-1a: the same jitter on every platform
  int delay = retry_.backoff_ms;
  Status last;
  for (int attempt = 0; attempt <= (retry ? retry_.retries : 0); ++attempt) {
    if (attempt > 0) {
      const int wait = delay / 2 + static_cast<int>(jitter() % static_cast<uint64_t>(delay / 2 + 1));
      if (retry_.on_retry) retry_.on_retry(RetryNotice{method + " " + target, attempt, retry_.retries, wait, last.message()});
      sleep_cancellable(wait);
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
  return io_error(method + " " + target + " failed after " + std::to_string(retry_.retries + 1) + " attempts: " + last.message());
}

Result<TaskInfo> FederationClient::task(const std::string& id) {
  auto r = call("GET", protocol::task_path(id), "", true);
  if (!r) return r.status();
  if (r->status != 200) return server_error(r.value(), "task " + id);
  return protocol::parse_task_info(r->body);
}

Result<RoundInfo> FederationClient::round(const std::string& task, uint64_t id) {
  const std::string target = id == 0 ? protocol::current_round_path(task) : protocol::round_path(task, id);
  auto r = call("GET", target, "", true);
  if (!r) return r.status();
  if (r->status != 200) return server_error(r.value(), "round");
  return protocol::parse_round_info(r->body);
}

// The status of a reply, and on a refusal the server's error (code, name, message, current round).
static void read_reply(const TransportReply& r, SubmitReply* s) {
  s->status = r.status;
  s->accepted = r.status == 200 || r.status == 201;
  if (s->accepted) return;
  if (auto e = protocol::parse_error_reply(r.body)) {
    s->error = e->code;
    s->error_name = e->code_name;
    s->message = e->message;
    s->current_round = e->current_round.value_or(0);
  }
}

Result<SubmitReply> FederationClient::submit(const std::string& task, uint64_t round, const protocol::SubmissionRequest& submission) {
  auto r = call("POST", protocol::submissions_path(task, round), protocol::to_json(submission).dump(), true);
  if (!r) return r.status();
  SubmitReply s;
  read_reply(r.value(), &s);
  s.duplicate = r->status == 200;
  return s;
}

Result<SecAggReply> FederationClient::secagg(const std::string& method, const std::string& task, uint64_t round, const std::string& step,
                                             const std::string& body) {
  auto r = call(method, protocol::secagg_path(task, round, step), body, true);
  if (!r) return r.status();
  SecAggReply s;
  read_reply(r.value(), &s);
  if (method == "POST" && s.error == protocol::ErrorCode::kSecAggRepeat) s.accepted = s.duplicate = true;
  if (s.accepted) s.body = std::move(r->body);
  return s;
}

Result<UpdateLog> FederationClient::log_since(const std::string& task, uint64_t since) {
  std::vector<UpdateEntry> entries;
  uint64_t at = since;
  for (;;) {
    auto r = call("GET", protocol::log_path(task, at, 10000, true), "", true);
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
  auto r = call("GET", protocol::snapshot_path(task), "", true);
  if (!r) return r.status();
  if (r->status != 200) return server_error(r.value(), "snapshot");
  const std::string want = r->header("x-pocketllm-sha256");
  if (want.empty() || to_hex(sha256(r->body)) != want) return corrupt("snapshot: the body does not match its SHA-256");
  *version = std::strtoull(r->header("x-pocketllm-version").c_str(), nullptr, 10);
  return std::move(r->body);
}

}  // namespace pocketllm
