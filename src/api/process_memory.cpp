#include "memdx/process_memory.h"

#include "api/errors.h"
#include "proc/process_files.h"
#include "proc/procfs.h"
#include "proc/smaps.h"

namespace memdx {

ProcessMemory read_process_memory(pid_t pid) {
  api::check_pid(pid);
  proc::ProcFs fs;
  auto status_text = fs.read_pid_file(pid, "status");
  if (!status_text.ok()) api::throw_read_error(status_text.error());
  proc::Status status = proc::parse_status(*status_text);
  ProcessMemory memory;
  memory.rss_bytes = status.vm_rss_bytes.value_or(0);
  memory.rss_anon_bytes = status.rss_anon_bytes.value_or(0);
  memory.rss_file_bytes = status.rss_file_bytes.value_or(0);
  memory.rss_shmem_bytes = status.rss_shmem_bytes.value_or(0);
  memory.swap_bytes = status.vm_swap_bytes.value_or(0);
  memory.vsz_bytes = status.vm_size_bytes.value_or(0);
  // A kernel thread or a zombie has no address space: smaps_rollup would be empty.
  if (!status.vm_size_bytes) return memory;
  if (auto rollup_text = fs.read_pid_file(pid, "smaps_rollup"); rollup_text.ok()) {
    proc::SmapsCounters rollup = proc::parse_smaps_rollup(*rollup_text);
    memory.pss_bytes = rollup.pss_bytes;
    memory.uss_bytes = rollup.uss_bytes();
  }
  return memory;
}

}  // namespace memdx
