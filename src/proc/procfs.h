// Access to /proc and /sys for one machine. Reads files and returns text or plain structs:
// no policy, no printing. The roots are parameters so tests can point them at fixture trees.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proc/cgroup_files.h"
#include "proc/fds.h"
#include "proc/result.h"
#include "proc/system_files.h"

namespace memdx::proc {

// The memory controller of one cgroup (v2, or the v1 memory hierarchy on hybrid hosts).
// Every value is optional: a controller may be absent, a file unreadable, a limit "max".
struct CgroupMemory {
  int version = 0;        // 2 or 1
  std::string path;       // as in /proc/PID/cgroup, e.g. "/user.slice/app.service"
  std::string directory;  // where its files were read, e.g. "/sys/fs/cgroup/user.slice/..."
  std::optional<uint64_t> current_bytes;
  std::optional<uint64_t> max_bytes;   // nullopt: no limit
  std::optional<uint64_t> high_bytes;  // nullopt: no limit (v2 only)
  std::optional<uint64_t> events_oom;
  std::optional<uint64_t> events_oom_kill;
  std::optional<uint64_t> stat_anon_bytes;
  std::optional<uint64_t> stat_file_bytes;
  // Page cache on the inactive list (v2 "inactive_file", v1 "total_inactive_file"): what the kernel
  // reclaims first, so usage minus this is what the cgroup cannot give back cheaply.
  std::optional<uint64_t> stat_inactive_file_bytes;
  std::optional<Psi> psi;  // memory.pressure (v2 only)

  // Usage the cgroup cannot give back cheaply: usage minus its inactive page cache.
  uint64_t unreclaimable_bytes() const;
  // What still fits under the tighter of memory.max and memory.high; nullopt without either.
  std::optional<uint64_t> room_bytes() const;
  // room_bytes() as a share of that limit: 0 full, 1 empty; nullopt without a limit.
  std::optional<double> room_ratio() const;
};

class ProcFs {
 public:
  explicit ProcFs(std::string proc_root = "/proc", std::string sys_root = "/sys");

  // Reads /proc/PID/FILE whole. A missing file of a process that no longer exists is
  // reported as kProcessGone rather than kNotFound.
  Result<std::string> read_pid_file(pid_t pid, std::string_view file) const;
  Result<std::string> read_file(const std::string& path) const;

  bool process_exists(pid_t pid) const;
  // Every numeric entry of /proc, ascending; an error when /proc cannot be listed (out of file
  // descriptors, say), which is not the same as no processes.
  Result<std::vector<pid_t>> list_pids() const;
  std::vector<pid_t> thread_ids(pid_t pid) const;

  // Counts /proc/PID/fd by type. Needs the same access as smaps.
  Result<FdCounts> count_fds(pid_t pid) const;
  // Counts /proc/PID/fd entries only (no readlink): the sampler's cheap per-tick fd count.
  Result<uint32_t> count_fd_entries(pid_t pid) const;

  // User stack pointers of the process's threads, where the kernel exposes them (threads
  // blocked in a syscall); used to recognise thread stacks among anonymous mappings.
  std::vector<uint64_t> thread_stack_pointers(pid_t pid) const;

  Result<MemInfo> meminfo() const;
  std::optional<Psi> system_memory_pressure() const;
  std::optional<CgroupMemory> memory_cgroup(pid_t pid) const;
  // The cgroups above `cgroup` in its hierarchy, parent first, up to (not including) the root: a
  // limit set on a parent (a systemd slice) binds the processes below it too.
  std::vector<CgroupMemory> memory_cgroup_ancestors(const CgroupMemory& cgroup) const;
  // The directory of `pid`'s cgroup in the unified (v2) hierarchy, whether or not the memory
  // controller is enabled there: the PSI files (memory.pressure) exist in every v2 cgroup, also on
  // hybrid hosts whose memory controller is mounted as v1. nullopt: no cgroup2 mount.
  std::optional<std::string> cgroup2_directory(pid_t pid) const;

  const std::string& proc_root() const { return proc_root_; }
  const std::string& sys_root() const { return sys_root_; }

  // The mounts of /proc/self/mountinfo, with /sys rewritten to sys_root_; empty when unreadable.
  std::vector<MountEntry> cgroup_mounts() const;

 private:
  CgroupMemory read_memory_cgroup(int version, const std::string& path, const std::string& directory) const;
  std::string pid_dir(pid_t pid) const;

  std::string proc_root_;
  std::string sys_root_;
};

}  // namespace memdx::proc
