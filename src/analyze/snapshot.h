// Building memory snapshots from the probes: one process, a process tree, the system.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "model/snapshot.h"
#include "proc/procfs.h"
#include "proc/result.h"

namespace memdx::analyze {

// ppid -> children, from one pass over /proc/*/stat.
struct ProcessTable {
  std::map<pid_t, pid_t> parent_of;
  std::map<pid_t, std::vector<pid_t>> children_of;

  // pid and every descendant, parents before children (depth first, ascending pids).
  std::vector<pid_t> subtree(pid_t root) const;
  std::vector<pid_t> children(pid_t pid) const;
};
ProcessTable scan_process_table(const proc::ProcFs& fs);

struct SnapshotOptions {
  bool read_regions = true;  // full smaps: the per-category breakdown and top regions
  size_t top_regions = 10;
};

// Reads one process. Fails with kProcessGone when it exits (or its pid is reused) while being
// read, so a caller never sees a mix of two processes or a half-read smaps. Files that are not
// readable for permission reasons are listed in `unreadable` and the rest is still returned.
// With `fds`, the classification of its fds is kept there too (the DRM fds the GPU probe reads).
proc::Result<model::ProcessSnapshot> take_process_snapshot(const proc::ProcFs& fs, pid_t pid,
                                                           const SnapshotOptions& options,
                                                           std::optional<proc::FdCounts>* fds = nullptr);

// The memory figures of `pid` from status and smaps_rollup alone (the cheap path, libmemdx's
// read_process_memory): the same totals take_process_snapshot gives, without the mappings, fds
// and the rest. PSS and USS stay absent where smaps_rollup cannot be read. Fails when status
// cannot be read.
proc::Result<model::MemoryTotals> read_memory_totals(const proc::ProcFs& fs, pid_t pid);

// MemTotal/MemAvailable/swap, system PSI, and the memory cgroup of `pid`.
model::SystemSnapshot take_system_snapshot(const proc::ProcFs& fs, pid_t pid);

// The report of `memdx inspect` and of libmemdx's inspect(): each of `targets` (with `tree`, its
// descendants after it), the system, the first process's cgroup, and the notes. A descendant
// that exits while it is read is listed in exited_during_read. Fails with kProcessGone, its
// message the sentence to show, when the only target (or every process) exited before it could
// be read; with the ReadError of any other read that failed.
proc::Result<model::InspectReport> inspect_processes(const proc::ProcFs& fs, const std::vector<pid_t>& targets,
                                                     bool tree, size_t top_regions);

}  // namespace memdx::analyze
