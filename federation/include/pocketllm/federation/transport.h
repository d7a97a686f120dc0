// How a device's requests reach the server. The federation module speaks the protocol over this
// interface only: the built-in HTTPS client (https_transport.h, Linux devices and the CLI), an
// in-process service (the simulator) or an app's own HTTP stack implement it.
#pragma once

#include <cstdint>
#include <string>

#include "pocketllm/common/http_reply.h"
#include "pocketllm/common/status.h"

namespace pocketllm {

using TransportReply = HttpReply;

class Transport {
 public:
  virtual ~Transport() = default;
  // One request; a non-2xx status is a reply, not an error. Errors are network failures (kIoError) and
  // certificate problems (kMismatch: never retried).
  virtual Result<TransportReply> request(const std::string& method, const std::string& target, const std::string& body,
                                         const std::string& bearer) = 0;
  virtual uint64_t bytes_sent() const = 0;
  virtual uint64_t bytes_received() const = 0;
  virtual void disconnect() {}
};

}  // namespace pocketllm
