#include "pocketllm/cli/stop_signal.h"

#include <csignal>
#include <cstring>

#include <unistd.h>

namespace pocketllm::cli {
namespace {

std::atomic<bool> g_stop{false};
const char* g_notice = "";

void on_stop_signal(int sig) {
  g_stop.store(true);
  std::signal(sig, SIG_DFL);
  [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, g_notice, std::strlen(g_notice));
}

}  // namespace

const std::atomic<bool>& stop_on_signals(const char* notice) {
  g_notice = notice;
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
  return g_stop;
}

}  // namespace pocketllm::cli
