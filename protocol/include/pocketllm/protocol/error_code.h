// The stable error codes of the federation API (docs/protocol.md section 1, "Errors"). The server
// answers with {"error": {"code": NAME, "message": …}}; devices branch on the typed code, never on
// the message. Each code has one HTTP status.
#pragma once

#include <string>

namespace pocketllm::protocol {

enum class ErrorCode {
  // 400: the request cannot be read as the endpoint's schema
  kMalformedRequest, kMalformedJson, kWrongType, kUnknownField, kBadRound, kBadQuery, kBadTarget, kInvalidField,
  // 401, 403
  kUnauthenticated, kInvalidEnrolmentToken, kRevoked, kForbidden, kTokenCap, kNotSampled, kNotParticipant,
  // 404, 405
  kNotFound, kUnknownTask, kUnknownRound, kUnknownDevice, kNoSnapshots, kNoSecAgg, kMethodNotAllowed,
  // 409: the body also carries current_round and version
  kRoundClosed, kConflictingResubmission, kStaleBase, kTaskExists, kSecAggPhase, kSecAggRepeat,
  // 413, 416, 431
  kBodyTooLarge, kBeyondLog, kRequestHeaderTooLarge,
  // 422: well-formed but invalid values
  kWrongCount, kNonFinite, kBadExamples, kInvalidSubmission, kInvalidTask, kInvalidSecAggMessage, kSecAggRequired,
  // 429, 500, 503
  kRateLimited, kInternal, kStoreUnavailable, kBusy,
  // a code this build does not know (a newer server): never sent, only parsed
  kUnknown,
};

const char* error_code_name(ErrorCode code);
// The code named `name`, or kUnknown.
ErrorCode parse_error_code(const std::string& name);
// The HTTP status the code is sent with (500 for kUnknown).
int http_status(ErrorCode code);

}  // namespace pocketllm::protocol
