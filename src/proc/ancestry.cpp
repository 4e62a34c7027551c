#include "proc/ancestry.h"

#include "proc/process_files.h"

namespace memdx::proc {

Ancestry ancestry_of(const ProcFs& fs, pid_t pid, std::optional<pid_t> stop_at, size_t max_depth) {
  Ancestry out;
  while (pid > 0 && out.chain.size() < max_depth) {
    out.chain.push_back(pid);
    if (pid == 1 || pid == stop_at) break;
    Result<std::string> text = fs.read_pid_file(pid, "stat");
    std::optional<Stat> stat = text.ok() ? parse_stat(*text) : std::nullopt;
    if (!stat || stat->ppid == 0) {
      out.ended_at_gone = true;
      break;
    }
    pid = stat->ppid;
  }
  return out;
}

}  // namespace memdx::proc
