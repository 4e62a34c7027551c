#include "cli/run.h"

#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "cli/errors.h"
#include "cli/launch.h"
#include "cli/output_paths.h"
#include "cli/recording_common.h"
#include "model/terminal_text.h"
#include "proc/procfs.h"
#include "record/meta.h"

extern char** environ;

namespace memdx::cli {
namespace {

struct RunOptions {
  int64_t interval_ms = 200;
  std::string out_path;
  std::string json_path;
  std::string html_path;
  bool no_trace = false;
  TraceSettings trace;
  bool fail_on_leak = false;
  bool quiet = false;
  bool follow = false;
  SiteChoices sites;
  std::vector<std::string> command;
};

constexpr int kLeakFound = 3;

int run_run(RunOptions& options) {
  options.sites.load();  // before the run: a typo in a suppression file costs no run
  std::optional<ResolvedCommand> resolved = resolve_or_say(options.command);
  if (!resolved) return kCommandNotFound;
  const std::string& path = resolved->path;
  const std::string& name = resolved->name;
  std::string out_path = options.out_path.empty() ? default_recording_path(name) : options.out_path;
  check_distinct_outputs(
      {{"--out", out_path, OutputKind::kRecording}, {"--json", options.json_path}, {"--html", options.html_path}});
  VerdictOutputs outputs;
  outputs.json = OutputFile(options.json_path);
  outputs.html = OutputFile(options.html_path);

  RecordRequest request;
  request.out_path = out_path;
  request.meta = record::make_meta(proc::ProcFs(), "run", options.command, options.interval_ms, ::getpid());
  request.quiet = options.quiet;
  request.follow_tree = options.follow;
  request.root_is_child = true;
  request.trace = options.trace;
  if (!options.no_trace) request.tracer_library = tracer_for(path);
  std::optional<RecordOutcome> outcome = record_command(request, path, options.command);
  if (!outcome) return kCommandNotFound;
  say_if_nothing_traced(outcome->trace);
  int target_exit = exit_code_of(outcome->session.root_wait_status, name);
  model::Verdict verdict;
  try {
    verdict = analyze_and_report(out_path, outputs, stderr, options.sites);
  } catch (const RuntimeError& e) {
    // A recording cut short by a full disk may be unreadable: the command's exit code still counts.
    if (!outcome->session.store_error) throw;
    std::fprintf(stderr, "memdx: no verdict: %s\n", model::terminal_safe(e.what()).c_str());
    return target_exit;
  }
  std::string shown = model::terminal_safe(out_path);
  std::fprintf(stderr, "memdx: recording %s to %s (memdx report %s)\n",
               outcome->session.store_error ? "cut short" : "saved", shown.c_str(), shown.c_str());
  if (options.fail_on_leak && model::has_leak(verdict)) return kLeakFound;
  return target_exit;
}

}  // namespace

void add_run_command(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<RunOptions>();
  CLI::App* cmd = app.add_subcommand("run", "Run a command, record its whole process tree, and say whether it leaks");
  cmd->footer(
      "\nmemdx samples the command and every process it starts (forks, execs, daemons) until it exits,\n"
      "stores everything in one recording, then prints a verdict on stderr: which kind of memory grows,\n"
      "in which process, how fast, how sure, and what to look at next. The command's stdout and stderr\n"
      "stay its own. A recording can be analysed again with 'memdx report'. Ctrl-C stops the command as\n"
      "usual (a second Ctrl-C kills it); the recording is closed and the verdict printed all the same.\n\n"
      "When the command exits while processes it started still run (a script that starts a server in\n"
      "the background, a daemon), memdx says which and stops with the command: a build that leaves a\n"
      "compiler server behind must not keep memdx waiting. --follow records them until every one has\n"
      "ended (Ctrl-C then stops the recording and leaves them running).\n\n"
      "The heap tracer (libmemdx_trace.so, injected with LD_PRELOAD) records every allocation with\n"
      "its call stack in every process of the tree; --no-trace turns it off, --sample-bytes makes\n"
      "it sample for long production runs.\n\n"
      "Examples:\n"
      "  memdx run -- ./server --port 8080\n"
      "  memdx run --json verdict.json --fail-on-leak -- ./integration-test   # a CI gate: exit 3 on a leak\n"
      "  memdx run --html report.html -- ./indexer --full               # open report.html in a browser\n"
      "  memdx run --interval 1000 --out nightly.memdx -- ./batch-job\n\n"
      "Exit codes: the command's own exit code; 128+N when a signal N killed it; 3 with --fail-on-leak\n"
      "when a leak is found; 127 when the command cannot be started; 1 when memdx itself fails; 2 usage.");
  cmd->add_option("--interval", options->interval_ms, "Sampling interval in milliseconds")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{10}, int64_t{600000}));
  cmd->add_option("--out", options->out_path, "Recording file (default ./memdx-NAME-yyyymmdd-hhmmss.memdx)");
  cmd->add_option("--json", options->json_path, "Also write the verdict as JSON (schema memdx.verdict/1) to this file");
  cmd->add_option("--html", options->html_path,
                  "Also write the report as one self-contained HTML page (verdict, hypotheses, timelines, flame "
                  "graphs, sites, process tree) to this file");
  cmd->add_flag("--no-trace", options->no_trace, "Sample only, without the heap tracer");
  add_trace_options(*cmd, options->trace);
  add_site_options(*cmd, options->sites);
  cmd->add_flag("--fail-on-leak", options->fail_on_leak, "Exit 3 when a leak is found, for test suites and CI");
  cmd->add_flag("--quiet", options->quiet, "No progress lines: print only the final summary");
  cmd->add_flag("--follow", options->follow,
                "After the command exits, go on recording what it started (daemons, background jobs) until every "
                "process has ended");
  cmd->add_option("command", options->command, "The command to run, after --")->required();
  cmd->positionals_at_end();
  cmd->callback([options, &exit_code] { exit_code = run_run(*options); });
}

}  // namespace memdx::cli
