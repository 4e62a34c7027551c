#include "memdx/cache.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "api/errors.h"
#include "proc/procfs.h"

namespace memdx {

namespace {

// What the process's own memory cgroup still allows it; nullopt when it has no limit (or no
// memory controller that can be read).
std::optional<uint64_t> cgroup_room_bytes(const proc::ProcFs& procfs) {
  std::optional<proc::CgroupMemory> cgroup = procfs.memory_cgroup(::getpid());
  if (!cgroup || !cgroup->max_bytes) return std::nullopt;
  uint64_t used = cgroup->current_bytes.value_or(0);
  return *cgroup->max_bytes > used ? *cgroup->max_bytes - used : 0;
}

}  // namespace

uint64_t share_of_available_memory(double share) {
  // Written so that NaN fails too.
  if (!(share > 0.0 && share <= 1.0)) {
    throw Error(ErrorKind::kInvalidArgument, "share " + std::to_string(share) + " is not in (0, 1]");
  }
  proc::ProcFs procfs;
  auto meminfo = procfs.meminfo();
  if (!meminfo.ok()) api::throw_read_error(meminfo.error());
  if (!meminfo->mem_available_bytes) {
    throw Error(ErrorKind::kSystem, "/proc/meminfo has no MemAvailable (Linux 3.14 or later needed)");
  }
  uint64_t room = *meminfo->mem_available_bytes;
  if (std::optional<uint64_t> cgroup_room = cgroup_room_bytes(procfs)) room = std::min(room, *cgroup_room);
  return static_cast<uint64_t>(std::floor(static_cast<double>(room) * share));
}

}  // namespace memdx
