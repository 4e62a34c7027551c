#include "analyze/snapshot.h"
#include "api/errors.h"
#include "memdx/snapshot.h"

namespace memdx {

InspectReport inspect(pid_t pid, const InspectOptions& options) {
  api::check_pid(pid);
  proc::ProcFs fs;
  auto report = analyze::inspect_processes(fs, {pid}, options.tree, options.top_regions);
  if (!report.ok()) api::throw_read_error(report.error());
  return std::move(report).value();
}

}  // namespace memdx
