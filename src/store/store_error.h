// The one exception the store throws: a single line a user can act on, naming the recording,
// e.g. "disk full while writing run.memdx". Never a raw errno number or SQLite result code.
#pragma once

#include <stdexcept>
#include <string>

namespace memdx::store {

// What kind of failure, for code that decides on it (the library's memdx::Error kinds).
enum class StoreErrorKind {
  kNotFound,          // the recording does not exist
  kAlreadyExists,     // a recording is there already: never overwritten
  kPermissionDenied,  // the file system refused access
  kNotARecording,     // not a memdx recording, a damaged one, or one of a newer memdx
  kIo,                // anything else: disk full, I/O error, out of memory, locked
};

class StoreError : public std::runtime_error {
 public:
  explicit StoreError(const std::string& message, StoreErrorKind kind = StoreErrorKind::kIo)
      : std::runtime_error(message), kind_(kind) {}

  StoreErrorKind kind() const noexcept { return kind_; }

 private:
  StoreErrorKind kind_;
};

}  // namespace memdx::store
