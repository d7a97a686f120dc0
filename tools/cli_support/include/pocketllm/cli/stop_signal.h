// Ctrl-C / SIGTERM for a long command (pocketllm federate, pocketllm-sim): the first signal raises the
// returned flag — the command stops at its next safe point with its work saved — and prints `notice` on
// stderr; a second one ends the process at once (the default action is restored).
#pragma once

#include <atomic>

namespace pocketllm::cli {

// `notice` must outlive the process's handling of signals (a string literal).
const std::atomic<bool>& stop_on_signals(const char* notice);

}  // namespace pocketllm::cli
