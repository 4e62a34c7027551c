// Internal failures turned into the one public memdx::Error: nothing of memdx's own exception
// types crosses the library's boundary.
#pragma once

#include <string>

#include "memdx/error.h"
#include "proc/result.h"
#include "store/store_error.h"

namespace memdx::api {

[[noreturn]] void throw_read_error(const proc::ReadError& error);
[[noreturn]] void throw_store_error(const store::StoreError& error);

// Throws kInvalidArgument unless pid > 0.
void check_pid(pid_t pid);

}  // namespace memdx::api
