// Status and Result<T>: the error type used across modules. Functions that can fail on bad input
// return one of these instead of throwing, so the C ABI (sdk/) can turn them into status codes.
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace pocketllm {

enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument = 1,  // the caller passed something malformed
  kNotFound = 2,         // a file, tensor or record does not exist
  kIoError = 3,          // the OS refused a read, write, mmap, fsync or rename
  kCorrupt = 4,          // a file or message exists but is malformed
  kMismatch = 5,         // two things that must agree do not (model id, spec, shape)
  kUnsupported = 6,      // valid but not handled (dtype, architecture, version)
  kOutOfRange = 7,       // an index, size or count beyond its limit
  kCancelled = 8,        // stopped by the user or a callback
  kInternal = 9,         // a bug: an invariant did not hold
  kResourceExhausted = 10,  // over a memory (or other) budget the caller set
  kBusy = 11,            // held by someone else (a run directory another process or handle has open)
};

const char* status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return Status(); }

  bool is_ok() const { return code_ == StatusCode::kOk; }
  explicit operator bool() const { return is_ok(); }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "corrupt: model.safetensors: tensor 'x' ..." — for logs and CLI output.
  std::string to_string() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status invalid_argument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status not_found(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status io_error(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
inline Status corrupt(std::string m) { return {StatusCode::kCorrupt, std::move(m)}; }
inline Status mismatch(std::string m) { return {StatusCode::kMismatch, std::move(m)}; }
inline Status unsupported(std::string m) { return {StatusCode::kUnsupported, std::move(m)}; }
inline Status out_of_range(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
inline Status internal_error(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
inline Status resource_exhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
inline Status busy(std::string m) { return {StatusCode::kBusy, std::move(m)}; }
inline Status cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }

// A value or the Status that explains why there is none.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {
    if (status_.is_ok()) status_ = Status(StatusCode::kInternal, "Result built from an ok Status without a value");
  }

  bool is_ok() const { return value_.has_value(); }
  explicit operator bool() const { return is_ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace pocketllm

#define POCKETLLM_RETURN_IF_ERROR(expr)          \
  do {                                           \
    ::pocketllm::Status pllm_status_ = (expr);   \
    if (!pllm_status_.is_ok()) return pllm_status_; \
  } while (0)
