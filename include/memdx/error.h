// The one exception libmemdx throws. Every failure says what to act on in what() (one line, no
// errno number) and what kind of failure it is in kind(), for code that decides on it.
#pragma once

#include <stdexcept>
#include <string>

#include "memdx/export.h"

namespace memdx {

enum class ErrorKind {
  kNoSuchProcess,     // no process has that pid, or it exited while memdx read it
  kPermissionDenied,  // another user's process (needs root or CAP_SYS_PTRACE), or a file memdx may not open
  kNotFound,          // a file (a recording) that does not exist
  kAlreadyExists,     // a recording's path is taken: memdx never overwrites a file
  kInvalidArgument,   // a value the function cannot take (a pid <= 0, an interval of 0 ms)
  kBadRecording,      // not a memdx recording, or a damaged one
  kSystem,            // anything else the system refused (disk full, out of descriptors)
};

// "no such process", "permission denied", ...
MEMDX_API const char* to_string(ErrorKind kind);

class MEMDX_API Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message);
  ~Error() override;

  ErrorKind kind() const noexcept { return kind_; }

 private:
  ErrorKind kind_;
};

}  // namespace memdx
