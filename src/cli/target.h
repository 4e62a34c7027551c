// Turning the PID|NAME argument of a command into pids.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "proc/procfs.h"

namespace memdx::cli {

struct TargetMatch {
  pid_t pid = 0;
  std::string command;  // for listing ambiguous matches
};

// A string of digits is a pid; anything that starts like a number but is not one (negative,
// "12abc", "0x10") is a usage error; anything else is a NAME, matched against the exact comm or
// a substring of the command line. memdx itself and its ancestors (shells, sudo) never match by
// command line. Throws UsageError or RuntimeError with the message to show.
std::vector<TargetMatch> resolve_target(const proc::ProcFs& fs, const std::string& argument);

// Exactly one pid for `argument`, or an error listing the candidates when there are several
// and `allow_many` is false.
std::vector<pid_t> select_targets(const proc::ProcFs& fs, const std::string& argument, bool allow_many);

}  // namespace memdx::cli
