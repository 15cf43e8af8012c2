// Status and StatusOr<T>: how every recoverable error crosses a module boundary in mtps.
// Header-only, with no dependency beyond the standard library, so every part can use it.
//
//   StatusOr<Table*> t = FindTable(id);
//   if (!t.ok()) return t.status();
//   MTPS_RETURN_IF_ERROR(Validate(spec));
//   MTPS_ASSIGN_OR_RETURN(auto spec, LoadJobSpec(path));
#pragma once

#include <cassert>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace mtps {

// The kind of a failure tells the caller what to do next: kUnavailable and
// kDeadlineExceeded are worth a retry, the others are not. The numeric values travel on
// the wire (mtps.capnp ErrorCode) and must not change.
enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument = 1,    // the request or input is malformed; do not retry
  kNotFound = 2,           // unknown table, block, file, node
  kAlreadyExists = 3,
  kFailedPrecondition = 4, // state does not allow it (wrong spec hash, not owner)
  kOutOfRange = 5,
  kResourceExhausted = 6,  // over a size limit or a capacity
  kDataLoss = 7,           // corrupt or truncated file or message
  kUnavailable = 8,        // peer gone or not ready; retry may help
  kDeadlineExceeded = 9,   // timed out; retry may help
  kCancelled = 10,
  kUnimplemented = 11,
  kInternal = 12,          // a bug
  kVersionMismatch = 13,   // protocol or format version not understood
  kPermissionDenied = 14,  // the sender may not ask for this (not its role or identity)
};

inline const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "OK";
    case StatusCode::kInvalidArgument: return "INVALID_ARGUMENT";
    case StatusCode::kNotFound: return "NOT_FOUND";
    case StatusCode::kAlreadyExists: return "ALREADY_EXISTS";
    case StatusCode::kFailedPrecondition: return "FAILED_PRECONDITION";
    case StatusCode::kOutOfRange: return "OUT_OF_RANGE";
    case StatusCode::kResourceExhausted: return "RESOURCE_EXHAUSTED";
    case StatusCode::kDataLoss: return "DATA_LOSS";
    case StatusCode::kUnavailable: return "UNAVAILABLE";
    case StatusCode::kDeadlineExceeded: return "DEADLINE_EXCEEDED";
    case StatusCode::kCancelled: return "CANCELLED";
    case StatusCode::kUnimplemented: return "UNIMPLEMENTED";
    case StatusCode::kInternal: return "INTERNAL";
    case StatusCode::kVersionMismatch: return "VERSION_MISMATCH";
    case StatusCode::kPermissionDenied: return "PERMISSION_DENIED";
  }
  return "UNKNOWN";
}

// A Status is either OK (costs one int) or a code with a message that names the values
// that explain the failure. Thread-compatible: const methods may be called concurrently.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status OK() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // Whether trying the same call again may succeed.
  bool retryable() const {
    return code_ == StatusCode::kUnavailable || code_ == StatusCode::kDeadlineExceeded;
  }

  std::string ToString() const {
    if (ok()) return "OK";
    return std::string(StatusCodeName(code_)) + ": " + message_;
  }
  // Returns a copy whose message starts with `context`, e.g. the file being read.
  Status WithContext(std::string_view context) const {
    if (ok()) return *this;
    return Status(code_, std::string(context) + ": " + message_);
  }

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }
  friend std::ostream& operator<<(std::ostream& os, const Status& s) { return os << s.ToString(); }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
inline Status FailedPrecondition(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
inline Status OutOfRange(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
inline Status ResourceExhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
inline Status DataLoss(std::string m) { return {StatusCode::kDataLoss, std::move(m)}; }
inline Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status DeadlineExceeded(std::string m) { return {StatusCode::kDeadlineExceeded, std::move(m)}; }
inline Status Cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }
inline Status Unimplemented(std::string m) { return {StatusCode::kUnimplemented, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
inline Status VersionMismatch(std::string m) { return {StatusCode::kVersionMismatch, std::move(m)}; }
inline Status PermissionDenied(std::string m) { return {StatusCode::kPermissionDenied, std::move(m)}; }

// A value or the Status that explains why there is none. Accessing the value of a failed
// StatusOr is a bug (asserted).
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(const T& value) : value_(value) {}
  StatusOr(T&& value) : value_(std::move(value)) {}
  StatusOr(Status status) : status_(std::move(status)) {
    assert(!status_.ok() && "StatusOr built from an OK status carries no value");
    if (status_.ok()) status_ = Internal("StatusOr built from an OK status");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const& { return status_; }
  Status status() && { return std::move(status_); }

  const T& value() const& { assert(ok()); return *value_; }
  T& value() & { assert(ok()); return *value_; }
  T&& value() && { assert(ok()); return std::move(*value_); }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace mtps

#define MTPS_STATUS_CONCAT_INNER_(a, b) a##b
#define MTPS_STATUS_CONCAT_(a, b) MTPS_STATUS_CONCAT_INNER_(a, b)

// Returns from the enclosing function when `expr` yields a non-OK Status.
#define MTPS_RETURN_IF_ERROR(expr)                    \
  do {                                                \
    ::mtps::Status mtps_status_ = (expr);             \
    if (!mtps_status_.ok()) return mtps_status_;      \
  } while (0)

// `lhs` = the value of the StatusOr `expr`, or return its Status.
#define MTPS_ASSIGN_OR_RETURN(lhs, expr) \
  MTPS_ASSIGN_OR_RETURN_IMPL_(MTPS_STATUS_CONCAT_(mtps_statusor_, __LINE__), lhs, expr)
#define MTPS_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return std::move(tmp).status();    \
  lhs = std::move(tmp).value()
