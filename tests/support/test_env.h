// What the server tests share: the admin token they configure and temporary directories.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

namespace pocketllm::server::test {

inline const std::string kAdminToken = "admin-secret-token-for-tests";

// The directories temp_dir() made, removed with everything in them when the test binary exits normally
// (a failing or crashing test's files are kept for a look).
class TempDirs {
 public:
  static TempDirs& instance() {
    static TempDirs dirs;
    return dirs;
  }
  void add(const std::string& dir) { dirs_.push_back(dir); }
  ~TempDirs() {
    std::error_code ec;
    for (const std::string& d : dirs_) std::filesystem::remove_all(d, ec);
  }

 private:
  std::vector<std::string> dirs_;
};

inline std::string temp_dir(const std::string& tag) {
  std::string tmpl = (std::filesystem::temp_directory_path() / ("pocketllm-" + tag + "-XXXXXX")).string();
  if (!mkdtemp(tmpl.data())) std::abort();
  TempDirs::instance().add(tmpl);
  return tmpl;
}

}  // namespace pocketllm::server::test
