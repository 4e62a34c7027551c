// Result of reading something from /proc or /sys: a value, or why it could not be read.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace memdx::proc {

// Why a read failed, in the terms a user can act on (never a raw errno number).
enum class ReadErrorKind {
  kNotFound,          // the file does not exist (older kernel, feature not built in)
  kPermissionDenied,  // another user's process: needs root or CAP_SYS_PTRACE
  kProcessGone,       // the process exited while it was being read
  kOther,             // anything else; `message` says what
};

struct ReadError {
  ReadErrorKind kind = ReadErrorKind::kOther;
  std::string path;     // what was being read
  std::string message;  // human text, e.g. "Input/output error"
};

// A minimal expected<T, ReadError>: C++20 has no std::expected yet. [[nodiscard]]: a read whose
// failure nobody looks at is a figure silently missing.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : data_(std::move(value)) {}          // NOLINT(google-explicit-constructor)
  Result(ReadError error) : data_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return std::holds_alternative<T>(data_); }
  explicit operator bool() const { return ok(); }
  const T& value() const& { return std::get<T>(data_); }
  T& value() & { return std::get<T>(data_); }
  T&& value() && { return std::get<T>(std::move(data_)); }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }
  const ReadError& error() const { return std::get<ReadError>(data_); }

 private:
  std::variant<T, ReadError> data_;
};

}  // namespace memdx::proc
