// A process's memory in one cheap read: the figures a program checks often (before loading a
// model, in a test, in its own metrics). Two small /proc files (status and smaps_rollup), no
// page-table walk of the whole process beyond what the kernel does for smaps_rollup.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>

#include "memdx/export.h"

namespace memdx {

struct ProcessMemory {
  uint64_t rss_bytes = 0;        // resident: anon + file + shmem (what top shows as RES)
  uint64_t rss_anon_bytes = 0;   // private memory the process wrote: heap, stacks, anonymous mmap
  uint64_t rss_file_bytes = 0;   // resident pages of mapped files: code, libraries, mmap'd data
  uint64_t rss_shmem_bytes = 0;  // shared memory, tmpfs and memfd pages
  uint64_t swap_bytes = 0;       // swapped out
  uint64_t vsz_bytes = 0;        // address space reserved: not memory used
  // Proportional set size (shared pages divided among their users: adds up across processes) and
  // unique set size (private pages only: what exiting would free). Absent when smaps_rollup cannot
  // be read: another user's process without root, or a kernel older than 4.14.
  std::optional<uint64_t> pss_bytes;
  std::optional<uint64_t> uss_bytes;
};

// The memory of `pid` now (getpid() for the calling process). Safe to call from any thread; the
// process is not stopped or altered. A kernel thread or a zombie has no memory: all zeros.
// Throws memdx::Error: kNoSuchProcess, kPermissionDenied (status unreadable: hidepid), or
// kInvalidArgument (pid <= 0).
MEMDX_API ProcessMemory read_process_memory(pid_t pid);

}  // namespace memdx
