// Runs the real pocketllm-server binary for end-to-end tests: a test certificate made with the openssl
// command, an admin token file, start/kill/restart on a free loopback port, and an HTTPS client to it.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "pocketllm/common/file_util.h"
#include "pocketllm/net/http_client.h"
#include "test_env.h"

#include <nlohmann/json.hpp>

namespace pocketllm::server::test {

// A self-signed P-256 certificate for 127.0.0.1 and localhost, made by the openssl command line.
inline void make_test_cert(const std::string& dir, const std::string& name = "server") {
  const std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost"
                          " -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout " + dir + "/" + name + ".key -out " + dir + "/" + name +
                          ".crt >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("openssl could not make a test certificate");
}

class ServerProcess {
 public:
  ServerProcess(std::string binary, std::string dir, std::vector<std::string> extra = {})
      : binary_(std::move(binary)), dir_(std::move(dir)), extra_(std::move(extra)) {
    std::ofstream(dir_ + "/admin_token") << kAdminToken << "\n";
  }
  ~ServerProcess() { kill_now(SIGKILL); }

  void start() {
    std::remove((dir_ + "/port").c_str());
    std::vector<std::string> args = {binary_, "--listen", "127.0.0.1:0", "--port-file", dir_ + "/port", "--store", dir_ + "/store.db",
                                     "--admin-token-file", dir_ + "/admin_token", "--tls-cert", dir_ + "/server.crt", "--tls-key",
                                     dir_ + "/server.key", "--shutdown-grace", "3"};
    args.insert(args.end(), extra_.begin(), extra_.end());
    pid_ = fork();
    if (pid_ == 0) {
      const std::string log = dir_ + "/server.log";
      FILE* f = std::freopen(log.c_str(), "a", stderr);
      (void)f;
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    for (int i = 0; i < 1000; ++i) {
      auto text = read_file(dir_ + "/port");
      if (text && !text->empty()) {
        port_ = std::stoi(text.value());
        return;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("server exited at start; see " + dir_ + "/server.log");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    throw std::runtime_error("server did not report its port");
  }

  // Sends a signal and waits for the exit; returns the exit status (-1 when killed by a signal).
  int kill_now(int sig) {
    if (pid_ <= 0) return -2;
    ::kill(pid_, sig);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  std::unique_ptr<net::HttpClient> client(int timeout_ms = 10000) const {
    net::ClientOptions o;
    o.url = url();
    o.ca_file = dir_ + "/server.crt";
    o.connect_timeout_ms = timeout_ms;
    o.io_timeout_ms = timeout_ms;
    auto c = net::HttpClient::create(o);
    if (!c) throw std::runtime_error(c.status().to_string());
    return std::move(c.value());
  }

 private:
  std::string binary_, dir_;
  std::vector<std::string> extra_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace pocketllm::server::test
