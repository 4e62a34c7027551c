#include "record/meta.h"

#include <sys/utsname.h>

#include <chrono>
#include <ctime>

#include "memdx/version.h"

namespace memdx::record {

model::RecordingMeta make_meta(const proc::ProcFs& fs, const std::string& kind, const std::vector<std::string>& command,
                               int64_t interval_ms, pid_t root) {
  model::RecordingMeta meta;
  meta.kind = kind;
  meta.command = command;
  meta.interval_ms = interval_ms;
  meta.memdx_version = MEMDX_VERSION_STRING;
  auto now = std::chrono::system_clock::now();
  meta.started_at_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  char iso[32];
  std::strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &utc);
  meta.started_at_utc = iso;
  utsname names{};
  if (::uname(&names) == 0) {
    meta.host = names.nodename;
    meta.kernel = names.release;
  }
  if (auto info = fs.meminfo(); info.ok() && info->mem_total_bytes > 0) meta.mem_total_bytes = info->mem_total_bytes;
  if (auto cgroup = fs.memory_cgroup(root)) meta.cgroup_max_bytes = cgroup->max_bytes;
  return meta;
}

}  // namespace memdx::record
