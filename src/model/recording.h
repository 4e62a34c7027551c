// Value types of a recording (`memdx run` / `memdx watch`): what the sampler measured over time.
// Times are milliseconds since the recording started (monotonic clock); sizes are bytes.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace memdx::model {

struct RecordingMeta {
  std::vector<std::string> command;  // what `run` started; for `watch`, the watched command line
  std::string kind;                  // "run" or "watch"
  std::string started_at_utc;        // ISO 8601, e.g. "2026-11-24T01:20:55Z"
  int64_t started_at_unix_ms = 0;
  std::string host;
  std::string kernel;  // uname -r
  std::string memdx_version;
  int64_t interval_ms = 200;
  std::optional<uint64_t> cgroup_max_bytes;  // memory.max of the target's cgroup, if limited
  std::optional<uint64_t> mem_total_bytes;
};

// One process of the tree: born, maybe exited.
struct ProcessRecord {
  pid_t pid = 0;
  pid_t ppid = 0;
  std::vector<std::string> command;
  int64_t first_seen_ms = 0;
  std::optional<int64_t> exited_ms;
  std::optional<int> exit_code;    // normal exit status
  std::optional<int> exit_signal;  // killed by this signal
  // The GPUs it held memory on ("nvidia0 (NVIDIA H200)"), in the order they were first seen.
  std::vector<std::string> gpu_devices;
};

// One tick of one process. Cheap fields every tick; PSS/swap from smaps_rollup only on ticks
// whose time budget allowed reading it.
struct ProcessSample {
  int64_t t_ms = 0;
  pid_t pid = 0;
  uint64_t rss_bytes = 0;
  uint64_t rss_anon_bytes = 0;
  uint64_t rss_file_bytes = 0;
  uint64_t rss_shmem_bytes = 0;
  uint64_t vsz_bytes = 0;
  uint64_t swap_bytes = 0;
  std::optional<uint64_t> pss_bytes;
  // Private_Clean + Private_Dirty of smaps_rollup, read with PSS; not stored in recordings (what
  // `memdx serve` exports).
  std::optional<uint64_t> uss_bytes;
  // Absent when /proc/PID/fd cannot be read (another user's process without root): not measured,
  // never a made-up zero.
  std::optional<uint32_t> fds;
  uint32_t threads = 0;
  std::optional<uint64_t> heap_live_bytes;  // from the heap tracer, when it runs
  // GPU memory over its devices (NVML; DRM fdinfo for other drivers); absent where nothing measures
  // it (no NVIDIA library and no DRM client among its fds), never a made-up zero.
  std::optional<uint64_t> gpu_bytes;
};

// One tick of the machine and the target's cgroup.
struct SystemSample {
  int64_t t_ms = 0;
  // Absent when /proc/meminfo could not be read that tick (the file keeps 0 for it: its schema
  // version 1 has these columns NOT NULL, and no machine runs at exactly 0 available).
  std::optional<uint64_t> mem_available_bytes;
  std::optional<uint64_t> swap_free_bytes;
  std::optional<uint64_t> cgroup_current_bytes;
  std::optional<double> psi_some_avg10;
};

}  // namespace memdx::model
