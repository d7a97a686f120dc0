// `pocketllm-server admin …`: the operator's command line over the admin API (docs/server.md "Admin
// CLI"): tasks, enrolment tokens, devices and the log, as a table or as JSON.
#pragma once

#include <string>
#include <vector>

namespace pocketllm::server {

// Runs one admin command (args after "admin"); returns the process exit code (0 ok, 1 the server or the
// network refused, 2 usage).
int run_admin_cli(const std::vector<std::string>& args);

}  // namespace pocketllm::server
