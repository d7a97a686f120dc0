#include "server_link.h"

#include <openssl/rand.h>

#include <filesystem>

#include "pocketllm/common/sha256.h"
#include "pocketllm/common/json_util.h"
#include "pocketllm/federation/https_transport.h"
#include "pocketllm/sim/in_process_transport.h"

namespace pocketllm::sim {
namespace {

Result<std::unique_ptr<server::Service>> open_in_process(const std::string& out_dir, const std::string& admin_token) {
  server::ServiceOptions so;
  so.store_path = out_dir + "/sim-store.db";
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(so.store_path + suffix);
  so.durability = server::Durability::kNormal;
  so.admin_token_sha256 = to_hex(sha256(admin_token));
  so.device_rate_per_s = 0;
  return server::Service::open(so);
}

}  // namespace

Result<std::unique_ptr<ServerLink>> ServerLink::open(const SimOptions& o) {
  std::unique_ptr<ServerLink> l(new ServerLink());
  if (o.in_process) {
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof raw) != 1) return internal_error("no entropy for the admin token");
    l->admin_token_ = to_hex(raw, sizeof raw);
    auto s = open_in_process(o.out_dir, l->admin_token_);
    if (!s) return s.status();
    l->service_ = std::move(s.value());
    l->url_ = "inprocess:";
  } else {
    if (o.server_url.empty() || o.admin_token.empty()) return invalid_argument("a real server needs its URL and the admin token");
    l->url_ = o.server_url;
    l->ca_file_ = o.ca_file;
    l->admin_token_ = o.admin_token;
  }
  auto admin = l->transport();
  if (!admin) return admin.status();
  l->admin_ = std::move(admin.value());
  auto reader = l->transport();
  if (!reader) return reader.status();
  l->reader_ = FederationClient::with_credential(std::move(reader.value()), "admin", l->admin_token_, RetryPolicy{0, 250, {}});
  return l;
}

Result<std::unique_ptr<Transport>> ServerLink::transport() {
  if (service_) return std::unique_ptr<Transport>(std::make_unique<InProcessTransport>(*service_));
  ServerConnection c;
  c.url = url_;
  c.ca_file = ca_file_;
  return make_https_transport(c);
}

Result<nlohmann::json> ServerLink::admin(const std::string& method, const std::string& target, const std::string& body) {
  auto r = admin_->request(method, target, body, admin_token_);
  if (!r) return r.status();
  if (r->status == 404) return not_found(method + " " + target + ": HTTP 404 " + r->body);
  if (r->status >= 300) return invalid_argument(method + " " + target + ": HTTP " + std::to_string(r->status) + " " + r->body);
  nlohmann::json j = parse_json(r->body);
  if (j.is_discarded()) return corrupt(method + " " + target + ": the reply is not JSON");
  return j;
}

}  // namespace pocketllm::sim
