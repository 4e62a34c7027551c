#include "cli/watch.h"

#include <unistd.h>

#include <memory>
#include <optional>

#include <fmt/format.h>

#include "cli/errors.h"
#include "cli/output_paths.h"
#include "cli/recording_common.h"
#include "cli/target.h"
#include "model/terminal_text.h"
#include "proc/kv.h"
#include "proc/process_files.h"
#include "proc/procfs.h"
#include "record/meta.h"
#include "record/session.h"

namespace memdx::cli {
namespace {

struct WatchOptions {
  std::string target;
  int64_t interval_ms = 200;
  double duration_s = 0;  // 0: until the process exits or Ctrl-C
  std::string out_path;
  std::string json_path;
  std::string html_path;
  bool quiet = false;
};

int run_watch(const WatchOptions& options) {
  proc::ProcFs fs;
  pid_t root = select_targets(fs, options.target, false).front();
  auto cmdline = fs.read_pid_file(root, "cmdline");
  std::vector<std::string> command = cmdline.ok() ? proc::parse_cmdline(*cmdline) : std::vector<std::string>{};
  auto comm = fs.read_pid_file(root, "comm");
  std::string name = comm.ok() ? std::string(proc::trim(*comm)) : std::to_string(root);
  if (command.empty()) command = {name};

  std::string out_path = options.out_path.empty() ? default_recording_path(name) : options.out_path;
  check_distinct_outputs(
      {{"--out", out_path, OutputKind::kRecording}, {"--json", options.json_path}, {"--html", options.html_path}});
  VerdictOutputs outputs;
  outputs.json = OutputFile(options.json_path);
  outputs.html = OutputFile(options.html_path);
  RecordRequest request;
  request.out_path = out_path;
  request.meta = record::make_meta(proc::ProcFs(), "watch", command, options.interval_ms, root);
  request.quiet = options.quiet;
  if (options.duration_s > 0) request.duration_ms = static_cast<int64_t>(options.duration_s * 1000.0);
  record::SessionResult result =
      record_tree(request, [root](const std::vector<std::string>&) { return root; })->session;
  if (result.end == record::SessionResult::End::kRootExited) {
    std::fprintf(stderr, "memdx: pid %d exited after %.1f s; watch ended\n", root,
                 static_cast<double>(result.duration_ms) / 1000.0);
  }
  analyze_and_report(out_path, outputs, stdout);
  std::string shown = model::terminal_safe(out_path);
  std::fprintf(stderr, "memdx: recording saved to %s (memdx report %s)\n", shown.c_str(), shown.c_str());
  return 0;
}

}  // namespace

void add_watch_command(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<WatchOptions>();
  CLI::App* cmd = app.add_subcommand("watch", "Record a running process and its descendants, and say whether it leaks");
  cmd->footer(
      "\nSamples the process tree (no heap tracing) until the process exits, the duration passes, or\n"
      "Ctrl-C; each ends the same clean way: the recording is closed and the verdict printed.\n\n"
      "Examples:\n"
      "  memdx watch 4242 --duration 600\n"
      "  memdx watch --interval 1000 --json verdict.json my-server\n");
  cmd->add_option("target", options->target, "PID, or a NAME matching exactly one process")->required();
  cmd->add_option("--interval", options->interval_ms, "Sampling interval in milliseconds")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{10}, int64_t{600000}));
  cmd->add_option("--duration", options->duration_s, "Stop after this many seconds (default: until exit or Ctrl-C)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--out", options->out_path, "Recording file (default ./memdx-NAME-yyyymmdd-hhmmss.memdx)");
  cmd->add_option("--json", options->json_path, "Also write the verdict as JSON (schema memdx.verdict/1) to this file");
  cmd->add_option("--html", options->html_path, "Also write the report as one self-contained HTML page to this file");
  cmd->add_flag("--quiet", options->quiet, "No live view: print only the final summary");
  cmd->callback([options, &exit_code] { exit_code = run_watch(*options); });
}

}  // namespace memdx::cli
