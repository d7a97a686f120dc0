// What the server tests share: the admin token they configure and temporary directories.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

namespace pocketllm::server::test {

inline const std::string kAdminToken = "admin-secret-token-for-tests";

inline std::string temp_dir(const std::string& tag) {
  std::string tmpl = (std::filesystem::temp_directory_path() / ("pocketllm-" + tag + "-XXXXXX")).string();
  if (!mkdtemp(tmpl.data())) std::abort();
  return tmpl;
}

}  // namespace pocketllm::server::test
