// An in-process Service on a temporary store with a clock the test moves, and helpers to call it.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include <unistd.h>

#include "pocketllm/common/sha256.h"
#include "pocketllm/server/service.h"
#include "test_env.h"

namespace pocketllm::server::test {

// The store a fixture opens: SQLite in its directory, or — when POCKETLLM_TEST_POSTGRES holds an admin
// URL (tests/server/test_postgres_suite.sh sets it) — a database of its own on that PostgreSQL server.
struct TestStore {
  std::string location, database;
  explicit TestStore(const std::string& dir) {
    const char* admin = std::getenv("POCKETLLM_TEST_POSTGRES");
    if (!admin || !*admin) {
      location = dir + "/store.db";
      return;
    }
    static std::atomic<int> counter{0};
    database = "t" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
    psql(admin, "CREATE DATABASE " + database);
    const std::string url = admin;
    location = url.substr(0, url.rfind('/') + 1) + database;
  }
  ~TestStore() {
    if (!database.empty()) psql(std::getenv("POCKETLLM_TEST_POSTGRES"), "DROP DATABASE IF EXISTS " + database + " WITH (FORCE)");
  }
  bool postgres() const { return !database.empty(); }
  static void psql(const std::string& url, const std::string& sql) {
    const std::string cmd = "psql -X -q -v ON_ERROR_STOP=1 '" + url + "' -c '" + sql + "' >/dev/null";
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("test store: " + sql + " failed");
  }
};

struct Fixture {
  std::string dir = temp_dir("svc");
  TestStore store{dir};
  std::shared_ptr<std::atomic<int64_t>> clock = std::make_shared<std::atomic<int64_t>>(1'000'000);
  std::unique_ptr<Service> svc;
  double rate = 1000, burst = 1000;
  uint64_t checkpoint_every = 256;
  size_t snapshot_queue = 8;

  Fixture() { open(); }
  ~Fixture() {
    svc.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  void open() {
    svc.reset();
    ServiceOptions o;
    o.store_path = store.location;
    o.admin_token_sha256 = to_hex(sha256(kAdminToken));
    o.device_rate_per_s = rate;
    o.device_burst = burst;
    o.checkpoint_every = checkpoint_every;
    o.snapshot_queue = snapshot_queue;
    auto c = clock;
    o.clock_ms = [c] { return c->load(); };
    auto s = Service::open(o);
    if (!s) throw std::runtime_error(s.status().to_string());
    svc = std::move(s.value());
  }
  void advance(int64_t ms) {
    *clock += ms;
    svc->tick();
  }
  HttpResponse call(const std::string& method, const std::string& target, const std::string& body = "", const std::string& bearer = "") {
    HttpRequest r;
    r.method = method;
    r.target = target;
    r.body = body;
    if (!bearer.empty()) r.authorization = "Bearer " + bearer;
    return svc->handle(r);
  }
  nlohmann::json json_of(const HttpResponse& r) { return nlohmann::json::parse(r.body); }
  HttpResponse admin(const std::string& method, const std::string& target, const std::string& body = "") {
    return call(method, target, body, kAdminToken);
  }
  // Enrols a device; returns its credential.
  std::string enrol() {
    auto tok = json_of(admin("POST", "/v1/admin/enrolment-tokens", R"({"uses":1})"))["token"].get<std::string>();
    auto r = call("POST", "/v1/enrol", nlohmann::json{{"token", tok}}.dump());
    if (r.status != 201) throw std::runtime_error("enrol failed: " + r.body);
    return json_of(r)["credential"].get<std::string>();
  }
};

}  // namespace pocketllm::server::test
