// A process's chain of parents, read from /proc/PID/stat: who started it, up to init. The one
// place memdx walks ppids: choosing a target (memdx and its own ancestors are left out) and the
// tracer's collector (a connection is let in only from memdx's own tree).
#pragma once

#include <sys/types.h>

#include <optional>
#include <vector>

#include "proc/procfs.h"

namespace memdx::proc {

struct Ancestry {
  std::vector<pid_t> chain;  // `pid` first, then its parent, and so on
  // The walk stopped at a process it could not read (gone, or not readable), or that reads
  // ppid 0 without being init: being reaped (its stat says so for a moment), or started from
  // outside this pid namespace (`docker exec`). The last pid of `chain` is the one that could be read last;
  // when `pid` itself is gone, chain holds it alone.
  bool ended_at_gone = false;
};

// Walks from `pid` up the ppid chain to init (pid 1, included when reached), or until `stop_at`
// is reached (included). Never throws: a process that exits mid-walk ends the walk. At most
// `max_depth` pids, so that a loop in a forged or changing table cannot hold memdx.
Ancestry ancestry_of(const ProcFs& fs, pid_t pid, std::optional<pid_t> stop_at = std::nullopt, size_t max_depth = 4096);

}  // namespace memdx::proc
