#include "cli/trace.h"

#include <unistd.h>

#include <memory>

#include <fmt/format.h>

#include "cli/errors.h"
#include "cli/launch.h"
#include "cli/recording_common.h"
#include "model/format.h"
#include "model/terminal_text.h"
#include "proc/procfs.h"
#include "record/meta.h"

namespace memdx::cli {
namespace {

struct TraceOptions {
  std::string out_path;
  TraceSettings trace;
  bool follow = false;
  std::vector<std::string> command;
};

int run_trace(const TraceOptions& options) {
  std::optional<ResolvedCommand> resolved = resolve_or_say(options.command);
  if (!resolved) return kCommandNotFound;
  const std::string& path = resolved->path;
  const std::string& name = resolved->name;
  RecordRequest request;
  request.out_path = options.out_path.empty() ? default_recording_path(name) : options.out_path;
  request.meta = record::make_meta(proc::ProcFs(), "trace", options.command, 200, ::getpid());
  request.quiet = true;
  request.follow_tree = options.follow;
  request.root_is_child = true;
  request.trace = options.trace;
  request.tracer_library = tracer_for(path);
  // Without the tracer there is nothing to capture but the memory samples: take those.
  request.sample_memory = !request.tracer_library;
  std::optional<RecordOutcome> outcome = record_command(request, path, options.command);
  if (!outcome) return kCommandNotFound;
  say_if_nothing_traced(outcome->trace);
  int exit_code = exit_code_of(outcome->session.root_wait_status, name);
  std::string shown = model::terminal_safe(request.out_path);
  if (outcome->trace && outcome->trace->streams > 0) {
    std::fprintf(stderr, "memdx: traced %llu process image%s: %s of events, %s stored in %s (memdx report %s)\n",
                 static_cast<unsigned long long>(outcome->trace->streams), outcome->trace->streams == 1 ? "" : "s",
                 model::format_bytes(outcome->trace->bytes_received).c_str(),
                 model::format_bytes(outcome->trace->bytes_stored).c_str(), shown.c_str(), shown.c_str());
  } else {
    std::fprintf(stderr, "memdx: recording saved to %s (memdx report %s)\n", shown.c_str(), shown.c_str());
  }
  return exit_code;
}

}  // namespace

void add_trace_command(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<TraceOptions>();
  CLI::App* cmd =
      app.add_subcommand("trace", "Run a command under the heap tracer and capture every allocation, nothing else");
  cmd->footer(
      "\nThe lowest-overhead capture: libmemdx_trace.so is injected with LD_PRELOAD into the command and\n"
      "every process it starts (fork, exec, posix_spawn), and records each malloc/free/new/delete and\n"
      "mmap/munmap with its call stack. Compression and storage happen in memdx, not in the program.\n"
      "Memory is not sampled; 'memdx run' does both. Analyse the capture with 'memdx report FILE'.\n"
      "A statically linked or setuid program cannot be traced: memdx says so and samples it instead.\n\n"
      "Examples:\n"
      "  memdx trace -o app.memdx -- ./app --input big.json\n"
      "  memdx trace --sample-bytes 524288 -o prod.memdx -- ./server   # sampled: for long runs\n\n"
      "Exit codes: the command's own exit code; 128+N when a signal N killed it; 127 when the command\n"
      "cannot be started; 1 when memdx itself fails; 2 usage.");
  cmd->add_option("-o,--out", options->out_path, "Recording file (default ./memdx-NAME-yyyymmdd-hhmmss.memdx)");
  add_trace_options(*cmd, options->trace);
  cmd->add_flag("--follow", options->follow,
                "After the command exits, go on tracing what it started (daemons, background jobs) until every "
                "process has ended");
  cmd->add_option("command", options->command, "The command to run, after --")->required();
  cmd->positionals_at_end();
  cmd->callback([options, &exit_code] { exit_code = run_trace(*options); });
}

}  // namespace memdx::cli
