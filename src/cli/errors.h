// The two ways a command fails, mapped to exit codes by main: a usage error (2) or a failure
// at run time (1). Each carries the one line the user sees.
#pragma once

#include <stdexcept>

namespace memdx::cli {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct RuntimeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace memdx::cli
