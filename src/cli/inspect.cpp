#include "cli/inspect.h"

#include <unistd.h>

#include <cstdio>
#include <memory>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "analyze/notes.h"
#include "analyze/snapshot.h"
#include "cli/errors.h"
#include "cli/target.h"
#include "model/json_text.h"
#include "report/inspect_text.h"

namespace memdx::cli {
namespace {

struct InspectOptions {
  std::string target;
  bool tree = false;
  bool all = false;
  bool json = false;
  size_t top_regions = 10;
};

// One stderr line per process that could only be read in part, so scripts reading --json
// still learn why figures are missing.
void warn_partial(const model::InspectReport& report) {
  for (const model::ProcessSnapshot& p : report.processes) {
    if (p.unreadable.empty()) continue;
    std::string files;
    for (const auto& f : p.unreadable) files += (files.empty() ? "" : ", ") + f;
    const char* remedy = report.reader_is_root ? "the kernel refuses even root here (another user namespace or a "
                                                 "security module)"
                                               : "run as root or with CAP_SYS_PTRACE for the rest";
    std::fprintf(stderr, "memdx: pid %d: no access to %s (owned by uid %u); showing status figures only: %s.\n", p.pid,
                 files.c_str(), p.uid, remedy);
  }
}

int run_inspect(const InspectOptions& options) {
  proc::ProcFs fs;
  std::vector<pid_t> targets = select_targets(fs, options.target, options.all);
  auto read = analyze::inspect_processes(fs, targets, options.tree, options.top_regions);
  if (!read.ok()) {
    const proc::ReadError& error = read.error();
    if (error.kind == proc::ReadErrorKind::kProcessGone) throw RuntimeError(error.message);
    throw RuntimeError(fmt::format("cannot read {}: {}", error.path, error.message));
  }
  const model::InspectReport& report = *read;
  std::string out = options.json ? model::json_text(model::to_json(report)) : report::render_inspect_text(report);
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
  warn_partial(report);
  return 0;
}

}  // namespace

void add_inspect_command(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<InspectOptions>();
  CLI::App* cmd = app.add_subcommand("inspect", "One explained snapshot of a process's memory (or a process tree's)");
  cmd->footer(
      "\nWhat it shows, per process: RSS split into anon/file/shmem, PSS and USS (which add up across\n"
      "processes; RSS does not), swap, VSZ and peak RSS; memory by region (malloc heap, anonymous mmap,\n"
      "stacks, file-backed modules, shared memory, memfd, tmpfs, GPU driver mappings, reservations);\n"
      "open fds by type, threads and children; the system's and the cgroup's memory and pressure; and\n"
      "notes explaining what is harmless (a huge VSZ) and what is not.\n\n"
      "Examples:\n"
      "  memdx inspect $$                 this shell\n"
      "  memdx inspect --tree 4242        pid 4242 and all its descendants, totals by PSS\n"
      "  memdx inspect --all python       every process whose command line contains 'python'\n"
      "  memdx inspect --json 4242 | jq '.processes[0].memory.pss_bytes'\n\n"
      "Exit codes: 0 printed (possibly partial data for another user's process), 1 the process does\n"
      "not exist or exited, 2 usage error (bad pid, or a NAME matching several processes without --all).");
  cmd->add_option("target", options->target, "PID, or NAME: the exact process name or a substring of its command line")
      ->required()
      ->allow_extra_args(false);
  cmd->add_flag("--tree", options->tree, "Include every descendant process, one row each, totals by PSS");
  cmd->add_flag("--all", options->all, "Inspect every process NAME matches instead of refusing when several do");
  cmd->add_flag("--json", options->json, "Print JSON (schema memdx.inspect/1) instead of text");
  cmd->add_option("--top", options->top_regions, "How many of the largest regions to list per process")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  cmd->callback([options, &exit_code] { exit_code = run_inspect(*options); });
}

}  // namespace memdx::cli
