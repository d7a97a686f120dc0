// pocketllm-server's configuration: a JSON file, flags over it, and clear errors.
#include <catch2/catch.hpp>

#include <fstream>

#include "pocketllm/common/sha256.h"
#include "pocketllm/server/config.h"
#include "test_env.h"

using namespace pocketllm;
using namespace pocketllm::server;
using namespace pocketllm::server::test;

TEST_CASE("server config: file values, flags overriding them, and refusals", "[server][config]") {
  const std::string dir = temp_dir("cfg");
  std::ofstream(dir + "/token") << "a-long-enough-admin-token\n";
  std::ofstream(dir + "/short") << "short\n";
  std::ofstream(dir + "/server.json") << R"({"listen":"127.0.0.1:9443","threads":4,"tls_cert":"c.pem","tls_key":"k.pem",)"
                                      << R"("store":"/tmp/x.db","durability":"normal","admin_token_file":")" << dir
                                      << R"(/token","max_body_bytes":65536,"header_timeout_s":2.5,"device_rate_per_s":5})";
  auto c = parse_server_config({"--config=" + dir + "/server.json", "--threads", "3"});
  REQUIRE(c.is_ok());
  CHECK(c->http.address == "127.0.0.1");
  CHECK(c->http.port == 9443);
  CHECK(c->http.threads == 3);  // the flag wins over the file
  CHECK(c->http.tls);
  CHECK(c->http.cert_file == "c.pem");
  CHECK(c->service.store_path == "/tmp/x.db");
  CHECK(c->service.durability == Durability::kNormal);
  CHECK(c->service.admin_token_sha256 == to_hex(sha256("a-long-enough-admin-token")));
  CHECK(c->http.max_body_bytes == 65536);
  CHECK(c->http.header_timeout_ms == 2500);
  CHECK(c->service.device_rate_per_s == 5);

  auto help = parse_server_config({"--help"});
  REQUIRE(help.is_ok());
  CHECK(help->help);
  const std::string admin = "--admin-token-file=" + dir + "/token";
  auto msg = [](const Result<ServerConfig>& r) { return r.is_ok() ? std::string("ok") : r.status().message(); };
  CHECK(msg(parse_server_config({})).find("admin credential is required") != std::string::npos);
  CHECK(msg(parse_server_config({"--admin-token-file", dir + "/token"})).find("--tls-cert") != std::string::npos);
  CHECK(parse_server_config({"--admin-token-file", dir + "/token", "--insecure"}).is_ok());
  CHECK(msg(parse_server_config({"--admin-token-file", dir + "/short", "--insecure"})).find("shorter than 16") != std::string::npos);
  CHECK(msg(parse_server_config({"--admin-token-file", dir + "/token", "--insecure", "--threads", "0"})).find("threads") != std::string::npos);
  CHECK(msg(parse_server_config({"--admin-token-file", dir + "/token", "--insecure", "--listen", "nohost"})).find("HOST:PORT") != std::string::npos);
  CHECK(msg(parse_server_config({"--admin-token-file", dir + "/token", "--insecure", "--listen", "0.0.0.0:70000"})).find("port") != std::string::npos);
  CHECK(msg(parse_server_config({"--admin-token-file", dir + "/token", "--insecure", "--durability", "maybe"})).find("durability") != std::string::npos);
  CHECK(msg(parse_server_config({"--admin-token-file", dir + "/token", "--insecure", "--frobnicate", "1"})).find("unknown option --frobnicate") != std::string::npos);
  CHECK(msg(parse_server_config({"--admin-token-file", dir + "/token", "--insecure", "--max-body-bytes", "12abc"})).find("max_body_bytes") != std::string::npos);
  std::ofstream(dir + "/bad.json") << R"({"listen": 5, "oops": true})";
  CHECK(msg(parse_server_config({"--config", dir + "/bad.json"})).find("bad.json") != std::string::npos);
  std::ofstream(dir + "/notjson.json") << "listen = 1";
  CHECK(msg(parse_server_config({"--config", dir + "/notjson.json"})).find("not a JSON object") != std::string::npos);
  CHECK(msg(parse_server_config({"--config", dir + "/missing.json"})).find("missing.json") != std::string::npos);
  CHECK(msg(parse_server_config({"--admin-token-sha256", "XYZ", "--insecure"})).find("64 lower-case hex") != std::string::npos);
  auto eq_form = parse_server_config({admin, "--insecure", "--listen=127.0.0.1:0"});
  REQUIRE(eq_form.is_ok());
  CHECK(eq_form->http.port == 0);
  CHECK_FALSE(eq_form->http.tls);
  CHECK_FALSE(eq_form->http.reuse_port);
  CHECK(eq_form->service.commit_linger_us == -1);  // the store's default
  auto replica = parse_server_config({admin, "--insecure", "--reuse-port", "--commit-linger-us", "250"});
  REQUIRE(replica.is_ok());
  CHECK(replica->http.reuse_port);
  CHECK(replica->service.commit_linger_us == 250);
  CHECK(msg(parse_server_config({admin, "--insecure", "--commit-linger-us", "-1"})) == "commit_linger_us must be a number in [0, 100000], got '-1'");
  std::ofstream(dir + "/replica.json") << R"({"reuse_port": true, "commit_linger_us": 0})";
  auto from_file = parse_server_config({admin, "--insecure", "--config", dir + "/replica.json"});
  REQUIRE(from_file.is_ok());
  CHECK(from_file->http.reuse_port);
  CHECK(from_file->service.commit_linger_us == 0);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}
