// One in-process Service for the request harnesses: a store on tmpfs, a task, an enrolled device.
#pragma once

#include <unistd.h>

#include <memory>
#include <string>

#include "pocketllm/common/sha256.h"
#include "pocketllm/server/service.h"

namespace pocketllm::fuzz {

constexpr const char* kAdmin = "fuzz-admin-token-0123456789abcdef";

struct FuzzService {
  std::unique_ptr<server::Service> svc;
  std::string device_credential;

  FuzzService() {
    server::ServiceOptions o;
    o.store_path = (access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp") + std::string("/pocketllm-fuzz-") + std::to_string(getpid()) + ".db";
    ::unlink(o.store_path.c_str());
    o.durability = server::Durability::kNormal;
    o.admin_token_sha256 = to_hex(sha256(kAdmin));
    o.device_rate_per_s = 0;
    o.auth_failure_rate_per_s = 0;
    svc = std::move(server::Service::open(o).value());
    call("POST", "/v1/admin/tasks", R"({"id":"t","base_model_id":")" + std::string(64, 'a') + R"(","tau":2})", kAdmin);
    auto tok = call("POST", "/v1/admin/enrolment-tokens", R"({"uses":1})", kAdmin).body;
    const std::string token = tok.substr(tok.find("et_"), 51);
    auto enrolled = call("POST", "/v1/enrol", "{\"token\":\"" + token + "\"}", "").body;
    const size_t at = enrolled.find("\"credential\":\"") + 14;
    device_credential = enrolled.substr(at, enrolled.find('"', at) - at);
  }
  server::HttpResponse call(const std::string& method, const std::string& target, const std::string& body, const std::string& bearer) {
    server::HttpRequest r;
    r.method = method;
    r.target = target;
    r.body = body;
    if (!bearer.empty()) r.authorization = "Bearer " + bearer;
    return svc->handle(r);
  }
  static FuzzService& get() {
    static FuzzService s;
    return s;
  }
};

}  // namespace pocketllm::fuzz
