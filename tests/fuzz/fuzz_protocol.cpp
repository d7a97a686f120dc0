// What a device reads from a server (or a server from a device): every wire-type parser.
#include <string>

#include "pocketllm/common/json_util.h"
#include "pocketllm/protocol/messages.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace p = pocketllm::protocol;
  const std::string body(reinterpret_cast<const char*>(data), size);
  (void)p::parse_round_info(body);
  (void)p::parse_task_info(body);
  (void)p::parse_error_reply(body);
  (void)p::parse_enrol_reply(body);
  (void)p::parse_submission_receipt(body);
  const nlohmann::json j = pocketllm::parse_json(body);
  if (j.is_object()) {
    p::SubmissionRequest s;
    p::EnrolRequest e;
    (void)p::parse_submission(j, &s);
    (void)p::parse_enrol_request(j, &e);
  }
  return 0;
}
