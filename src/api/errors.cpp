#include "api/errors.h"

#include "memdx/version.h"

namespace memdx {

Error::Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}

// Out of line: the class's type information then lives in the library, once.
Error::~Error() = default;

const char* to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kNoSuchProcess:
      return "no such process";
    case ErrorKind::kPermissionDenied:
      return "permission denied";
    case ErrorKind::kNotFound:
      return "not found";
    case ErrorKind::kAlreadyExists:
      return "already exists";
    case ErrorKind::kInvalidArgument:
      return "invalid argument";
    case ErrorKind::kBadRecording:
      return "bad recording";
    case ErrorKind::kSystem:
      return "system error";
  }
  return "error";
}

const char* version() {
  return MEMDX_VERSION_STRING;
}

}  // namespace memdx

namespace memdx::api {

void throw_read_error(const proc::ReadError& error) {
  std::string message = error.path.empty() ? error.message : "cannot read " + error.path + ": " + error.message;
  switch (error.kind) {
    case proc::ReadErrorKind::kNotFound:
    case proc::ReadErrorKind::kProcessGone:
      throw Error(ErrorKind::kNoSuchProcess, message);
    case proc::ReadErrorKind::kPermissionDenied:
      throw Error(ErrorKind::kPermissionDenied, message);
    case proc::ReadErrorKind::kOther:
      break;
  }
  throw Error(ErrorKind::kSystem, message);
}

void throw_store_error(const store::StoreError& error) {
  switch (error.kind()) {
    case store::StoreErrorKind::kNotFound:
      throw Error(ErrorKind::kNotFound, error.what());
    case store::StoreErrorKind::kAlreadyExists:
      throw Error(ErrorKind::kAlreadyExists, error.what());
    case store::StoreErrorKind::kPermissionDenied:
      throw Error(ErrorKind::kPermissionDenied, error.what());
    case store::StoreErrorKind::kNotARecording:
      throw Error(ErrorKind::kBadRecording, error.what());
    case store::StoreErrorKind::kIo:
      break;
  }
  throw Error(ErrorKind::kSystem, error.what());
}

void check_pid(pid_t pid) {
  if (pid <= 0) throw Error(ErrorKind::kInvalidArgument, "pid " + std::to_string(pid) + " is not a process id");
}

}  // namespace memdx::api
