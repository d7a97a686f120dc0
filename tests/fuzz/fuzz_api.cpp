// Every API request through the in-process service: byte 0 picks the method, byte 1 the credential
// (none, admin, the enrolled device, garbage), then the target up to '\n', then the body.
#include <cstdlib>
#include <string>

#include "fuzz_service.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  auto& s = pocketllm::fuzz::FuzzService::get();
  static const char* kMethods[] = {"GET", "POST", "PUT", "DELETE", "BREW"};
  const std::string method = kMethods[data[0] % 5];
  const std::string creds[] = {"", pocketllm::fuzz::kAdmin, s.device_credential, "d_x.y"};
  const std::string rest(reinterpret_cast<const char*>(data) + 2, size - 2);
  const size_t nl = rest.find('\n');
  const std::string target = rest.substr(0, std::min<size_t>(nl, 512));
  const std::string body = nl == std::string::npos ? "" : rest.substr(nl + 1);
  auto r = s.call(method, target, body, creds[data[1] % 4]);
  if (r.status < 100 || r.status > 599) std::abort();
  return 0;
}
