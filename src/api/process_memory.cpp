#include "memdx/process_memory.h"

#include "analyze/snapshot.h"
#include "api/errors.h"
#include "proc/procfs.h"

namespace memdx {

ProcessMemory read_process_memory(pid_t pid) {
  api::check_pid(pid);
  auto totals = analyze::read_memory_totals(proc::ProcFs(), pid);
  if (!totals.ok()) api::throw_read_error(totals.error());
  ProcessMemory memory;
  memory.rss_bytes = totals->rss_bytes;
  memory.rss_anon_bytes = totals->rss_anon_bytes;
  memory.rss_file_bytes = totals->rss_file_bytes;
  memory.rss_shmem_bytes = totals->rss_shmem_bytes;
  memory.swap_bytes = totals->swap_bytes;
  memory.vsz_bytes = totals->vsz_bytes;
  memory.pss_bytes = totals->pss_bytes;
  memory.uss_bytes = totals->uss_bytes;
  return memory;
}

}  // namespace memdx
