#include "pocketllm/protocol/error_code.h"

#include <iterator>

namespace pocketllm::protocol {
namespace {

struct CodeInfo {
  ErrorCode code;
  const char* name;
  int status;
};

// The one table of codes, names and statuses.
constexpr CodeInfo kCodes[] = {
    {ErrorCode::kMalformedRequest, "malformed_request", 400},
    {ErrorCode::kMalformedJson, "malformed_json", 400},
    {ErrorCode::kWrongType, "wrong_type", 400},
    {ErrorCode::kUnknownField, "unknown_field", 400},
    {ErrorCode::kBadRound, "bad_round", 400},
    {ErrorCode::kBadQuery, "bad_query", 400},
    {ErrorCode::kBadTarget, "bad_target", 400},
    {ErrorCode::kInvalidField, "invalid_field", 422},
    {ErrorCode::kUnauthenticated, "unauthenticated", 401},
    {ErrorCode::kInvalidEnrolmentToken, "invalid_enrolment_token", 401},
    {ErrorCode::kRevoked, "revoked", 403},
    {ErrorCode::kForbidden, "forbidden", 403},
    {ErrorCode::kTokenCap, "token_cap", 403},
    {ErrorCode::kNotSampled, "not_sampled", 403},
    {ErrorCode::kNotParticipant, "not_participant", 403},
    {ErrorCode::kNotFound, "not_found", 404},
    {ErrorCode::kUnknownTask, "unknown_task", 404},
    {ErrorCode::kUnknownRound, "unknown_round", 404},
    {ErrorCode::kUnknownDevice, "unknown_device", 404},
    {ErrorCode::kNoSnapshots, "no_snapshots", 404},
    {ErrorCode::kNoSecAgg, "no_secagg", 404},
    {ErrorCode::kMethodNotAllowed, "method_not_allowed", 405},
    {ErrorCode::kRoundClosed, "round_closed", 409},
    {ErrorCode::kConflictingResubmission, "conflicting_resubmission", 409},
    {ErrorCode::kStaleBase, "stale_base", 409},
    {ErrorCode::kTaskExists, "task_exists", 409},
    {ErrorCode::kSecAggPhase, "secagg_phase", 409},
    {ErrorCode::kSecAggRepeat, "secagg_repeat", 409},
    {ErrorCode::kBodyTooLarge, "body_too_large", 413},
    {ErrorCode::kBeyondLog, "beyond_log", 416},
    {ErrorCode::kRequestHeaderTooLarge, "request_header_too_large", 431},
    {ErrorCode::kWrongCount, "wrong_count", 422},
    {ErrorCode::kNonFinite, "non_finite", 422},
    {ErrorCode::kBadExamples, "bad_examples", 422},
    {ErrorCode::kInvalidSubmission, "invalid_submission", 422},
    {ErrorCode::kInvalidTask, "invalid_task", 422},
    {ErrorCode::kInvalidSecAggMessage, "invalid_secagg_message", 422},
    {ErrorCode::kSecAggRequired, "secagg_required", 422},
    {ErrorCode::kRateLimited, "rate_limited", 429},
    {ErrorCode::kInternal, "internal", 500},
    {ErrorCode::kStoreUnavailable, "store_unavailable", 503},
    {ErrorCode::kBusy, "busy", 503},
};

const CodeInfo* find(ErrorCode code) {
  for (const CodeInfo& c : kCodes)
    if (c.code == code) return &c;
  return nullptr;
}

}  // namespace

const char* error_code_name(ErrorCode code) {
  const CodeInfo* c = find(code);
  return c ? c->name : "unknown";
}

ErrorCode parse_error_code(const std::string& name) {
  for (const CodeInfo& c : kCodes)
    if (name == c.name) return c.code;
  return ErrorCode::kUnknown;
}

int http_status(ErrorCode code) {
  const CodeInfo* c = find(code);
  return c ? c->status : 500;
}

}  // namespace pocketllm::protocol
