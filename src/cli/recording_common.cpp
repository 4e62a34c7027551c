#include "cli/recording_common.h"

#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "analyze/analysis.h"
#include "analyze/diagnose.h"
#include "analyze/heap_sites.h"
#include "cli/errors.h"
#include "cli/launch.h"
#include "cli/live_view.h"
#include "cli/progress_line.h"
#include "model/format.h"
#include "model/json_text.h"
#include "model/terminal_text.h"
#include "proc/procfs.h"
#include "record/tree_recording.h"
#include "report/folded.h"
#include "report/html.h"
#include "report/pprof.h"
#include "report/verdict_text.h"
#include "store/store_error.h"

namespace memdx::cli {

std::string default_recording_path(const std::string& name) {
  std::string safe;
  for (char c : name)
    safe += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-') ? c : '_';
  if (safe.empty()) safe = "target";
  std::time_t now = std::time(nullptr);
  std::tm local{};
  ::localtime_r(&now, &local);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &local);
  // Two runs in the same second must not collide: a recording is never overwritten.
  std::string path = fmt::format("./memdx-{}-{}.memdx", safe, stamp);
  for (int n = 2; ::access(path.c_str(), F_OK) == 0; ++n) path = fmt::format("./memdx-{}-{}-{}.memdx", safe, stamp, n);
  return path;
}

namespace {

// What the handler below writes: prepared beforehand, since a handler may only write().
char g_interrupted_line[1024];
size_t g_interrupted_bytes = 0;

void stop_analysis(int sig) {
  [[maybe_unused]] ssize_t written = ::write(STDERR_FILENO, g_interrupted_line, g_interrupted_bytes);
  ::_exit(128 + sig);
}

}  // namespace

void stop_on_signal_during_analysis(const std::string& recording_path) {
  std::string line = fmt::format("\nmemdx: interrupted while analysing; the recording is kept: memdx report {}\n",
                                 model::terminal_safe(recording_path));
  g_interrupted_bytes = std::min(line.size(), sizeof(g_interrupted_line));
  std::memcpy(g_interrupted_line, line.data(), g_interrupted_bytes);
  struct sigaction action {};
  action.sa_handler = stop_analysis;
  sigemptyset(&action.sa_mask);
  sigset_t signals;
  sigemptyset(&signals);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    ::sigaction(sig, &action, nullptr);
    sigaddset(&signals, sig);
  }
  // The recording session blocked them to wait for them; the analysis must hear them at once.
  ::pthread_sigmask(SIG_UNBLOCK, &signals, nullptr);
}

Analysis analyze_recording(const std::string& recording_path, size_t site_limit, const SiteChoices& sites) {
  stop_on_signal_during_analysis(recording_path);
  // libdw asks the debuginfod servers DEBUGINFOD_URLS names for every library without a local
  // debug file (Ubuntu sets it for every login): a report would download hundreds of MiB, or
  // wait on an unreachable server. memdx never goes to the network; --debug-dir and the
  // distribution's debug packages name what is stripped. Only memdx's own environment changes:
  // the programs it ran have theirs already.
  ::unsetenv("DEBUGINFOD_URLS");
  analyze::AnalysisOptions options;
  options.sites = sites.site_options(site_limit, true);
  try {
    std::optional<ProgressLine> progress;
    progress.emplace("reading the heap trace");
    options.on_progress = [&progress](uint64_t done_bytes, uint64_t total_bytes) {
      progress->update(done_bytes, total_bytes);
    };
    options.on_trace_read = [&progress] { progress.reset(); };
    return analyze::analyze_recording(recording_path, options);
  } catch (const store::StoreError& e) {
    throw RuntimeError(e.what());
  } catch (const analyze::TraceFormatError& e) {
    throw RuntimeError(fmt::format("{}: {}", recording_path, e.what()));
  }
}

std::string render_html_report(const Analysis& analysis, const report::HtmlOptions& options) {
  analyze::ProcessTimelines timelines;
  try {  // the samples are read again, one process at a time
    timelines = analyze::process_timelines(analysis.data, report::timeline_options(analysis.verdict, options));
  } catch (const store::StoreError& e) {
    throw RuntimeError(e.what());
  }
  return report::render_html({analysis.verdict, analysis.data.meta, analysis.data.processes, analysis.heap, timelines},
                             options);
}

bool print_text(std::FILE* stream, const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stream);
  if (std::fflush(stream) == 0 && !std::ferror(stream)) return true;
  if (stream != stderr) {
    std::fprintf(stderr, "memdx: %s was closed before the text was printed (%s); files are still written\n",
                 stream == stdout ? "standard output" : "the output", std::strerror(errno));
  }
  std::clearerr(stream);
  return false;
}

bool VerdictOutputs::take_standard_output() const {
  return json.is_standard_output() || html.is_standard_output() || pprof.is_standard_output() ||
         folded.is_standard_output();
}

namespace {

// Renders one heap-trace output into its file: a rendering failure is that file's failure.
template <typename Render>
void write_heap_output(OutputFile& out, const Analysis& analysis, Render render) {
  if (!out.is_open()) return;
  if (analysis.heap.processes.empty()) {
    throw RuntimeError(fmt::format(
        "cannot write {}: the recording has no heap trace (make one with memdx run or memdx trace)", out.path()));
  }
  std::string bytes;
  try {
    bytes = render();
  } catch (const std::runtime_error& e) {
    throw RuntimeError(fmt::format("cannot write {}: {}", out.path(), e.what()));
  }
  out.write_all(bytes);
}

}  // namespace

void write_verdict_outputs(const Analysis& analysis, const std::string& recording_path, const report::TextOptions& text,
                           const SiteChoices& sites, VerdictOutputs& outputs, std::FILE* text_stream) {
  print_text(outputs.take_standard_output() ? stderr : text_stream,
             report::render_verdict_text(analysis.verdict, text));
  outputs.json.write_all(model::json_text(model::to_json(analysis.verdict)));
  if (outputs.html.is_open()) {
    report::HtmlOptions html_options;
    html_options.recording_path = recording_path;
    html_options.debug_dirs = sites.debug_dirs;
    outputs.html.write_all(render_html_report(analysis, html_options));
  }
  write_heap_output(outputs.pprof, analysis, [&] {
    return report::render_pprof(analysis.heap, analysis.data.meta.started_at_unix_ms * 1'000'000, sites.debug_dirs);
  });
  write_heap_output(outputs.folded, analysis,
                    [&] { return report::render_folded(analysis.heap, outputs.folded_metric, sites.debug_dirs); });
}

model::Verdict analyze_and_report(const std::string& recording_path, VerdictOutputs& outputs, std::FILE* text_stream,
                                  const SiteChoices& sites) {
  Analysis analysis = analyze_recording(recording_path, kHeapSitesInJson, sites);
  report::TextOptions text;
  text.recording_path = recording_path;
  sites.apply_to(text);
  write_verdict_outputs(analysis, recording_path, text, sites, outputs, text_stream);
  return std::move(analysis.verdict);
}

namespace {

// libdwfl's search path separates directories with ':' and has no way to quote one.
std::string check_debug_dir(const std::string& dir) {
  if (dir.find(':') != std::string::npos) return fmt::format("{}: a debug directory's name cannot hold ':'", dir);
  return "";
}

}  // namespace

void SiteChoices::load() {
  suppressions = {};
  for (const std::string& file : suppression_files) {
    try {
      suppressions.merge(analyze::Suppressions::read_file(file));
    } catch (const analyze::SuppressionError& e) {
      throw UsageError(e.what());  // what the user gave is wrong, as with any other bad option
    }
  }
}

analyze::SiteOptions SiteChoices::site_options(size_t site_limit, bool sites_judge_growth) const {
  analyze::SiteOptions options;
  options.site_limit = site_limit;
  options.sites_judge_growth = sites_judge_growth;
  options.debug_dirs = debug_dirs;
  options.suppressions = suppressions.empty() ? nullptr : &suppressions;
  options.all_paths = all_paths;
  return options;
}

void SiteChoices::apply_to(report::TextOptions& text) const {
  text.all_paths = all_paths;
  text.suppression_files = suppression_files;
}

void add_site_options(CLI::App& command, SiteChoices& choices) {
  command
      .add_option("--debug-dir", choices.debug_dirs,
                  "Where the separate debug files of stripped programs and libraries are (repeatable): "
                  "DIR/.build-id/xx/yyyy.debug, or the file .gnu_debuglink names (or NAME.debug) in DIR or in "
                  "DIR/<the module's directory>; searched before the places memdx looks anyway (beside the "
                  "module, /usr/lib/debug)")
      ->type_name("DIR")
      ->allow_extra_args(false)  // one directory per --debug-dir: the recording after it is no directory
      ->check(CLI::ExistingDirectory.description(""))
      ->check(check_debug_dir);
  command
      .add_option("--suppress", choices.suppression_files,
                  "Hide the stacks this file matches from the call sites (repeatable): valgrind's suppression "
                  "blocks ({ name, Memcheck:Leak, fun:/obj:/src:/... lines }), LeakSanitizer's leak:PATTERN "
                  "lines, or one-line fun:PATTERN, obj:PATTERN, src:FILE[:LINE] matching any frame; * and ? are "
                  "wildcards. What they held is still counted, and said")
      ->type_name("FILE")
      ->allow_extra_args(false);
  command.add_flag("--paths", choices.all_paths,
                   "Show every distinct stack (path) of each call site shown, with its own counts and bytes, "
                   "in the text and the JSON");
}

std::optional<RecordOutcome> record_command(const RecordRequest& request, const std::string& path,
                                            const std::vector<std::string>& command) {
  return record_tree(request, [&](const std::vector<std::string>& environment) {
    // Orphaned grandchildren (daemons) are reparented to memdx, so the tree stays whole.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    return spawn_target(path, command, environment);
  });
}

void say_if_nothing_traced(const std::optional<TraceReceived>& trace) {
  if (trace && trace->refused_count > 0) {
    std::string who;
    for (const record::RefusedPeer& peer : trace->refused) {
      who += fmt::format("{}pid {} uid {} ({})", who.empty() ? "" : "; ", peer.pid, peer.uid,
                         record::refusal_text(peer.reason));
    }
    std::fprintf(stderr,
                 "memdx: refused %llu connection%s to the heap tracer's socket that did not come from the traced "
                 "programs: %s; nothing of %s was recorded\n",
                 static_cast<unsigned long long>(trace->refused_count), trace->refused_count == 1 ? "" : "s",
                 who.c_str(), trace->refused_count == 1 ? "it" : "them");
  }
  if (trace && trace->dropped > 0) {
    std::fprintf(stderr,
                 "memdx: %llu process image%s ran untraced: memdx was out of file descriptors (ulimit -n; memdx "
                 "raises its soft limit to the hard one)\n",
                 static_cast<unsigned long long>(trace->dropped), trace->dropped == 1 ? "" : "s");
  }
  if (!trace || trace->streams > 0) return;
  std::fprintf(stderr,
               "memdx: no process loaded the heap tracer (the program may clear LD_PRELOAD or be statically "
               "linked): the recording has memory samples only\n");
}

namespace {

// On a terminal without the live view, one line that memdx is at work: the command's own output
// may be all there is to see until the verdict.
// "pid 4242 (./server --port 8080), pid 4250 (worker)": the first few, then a count.
std::string some_processes(const std::vector<model::ProcessRecord>& processes) {
  constexpr size_t kNamed = 3;
  std::string out;
  for (size_t i = 0; i < processes.size() && i < kNamed; ++i) {
    std::string command = model::joined(processes[i].command);
    if (command.size() > 60) command = model::shorten(command, 60);
    out += fmt::format("{}pid {} ({})", i == 0 ? "" : ", ", processes[i].pid, model::terminal_safe(command));
  }
  if (processes.size() > kNamed) out += fmt::format(" and {} more", processes.size() - kNamed);
  return out;
}

std::string command_name(const RecordRequest& request) {
  return model::terminal_safe(request.meta.command.empty() ? "the command" : request.meta.command.front());
}

void say_store_error(const std::string& reason) {
  std::fprintf(stderr,
               "memdx: %s: the recording keeps what was written until now; memdx follows the command to its end "
               "without writing more\n",
               model::terminal_safe(reason).c_str());
}

// The root exited while processes it started (daemons, background jobs) still run: said once,
// with what memdx does about them and how to choose otherwise.
void say_left_running(const RecordRequest& request, const std::vector<model::ProcessRecord>& running) {
  const char* verb = running.size() == 1 ? "runs" : "run";
  if (request.follow_tree) {
    std::fprintf(stderr, "memdx: %s exited; what it started still %s: %s; recording until %s (Ctrl-C stops)\n",
                 command_name(request).c_str(), verb, some_processes(running).c_str(),
                 running.size() == 1 ? "it ends" : "they all end");
  } else {
    std::fprintf(stderr,
                 "memdx: %s exited; what it started still %s, not recorded further: %s (to record until every "
                 "process ends: memdx run --follow)\n",
                 command_name(request).c_str(), verb, some_processes(running).c_str());
  }
}

void say_recording(const std::string& what, const RecordRequest& request, bool live_view) {
  if (request.quiet || live_view || ::isatty(STDERR_FILENO) != 1) return;
  std::fprintf(stderr, "memdx: recording %s and every process it starts into %s; the verdict follows when %s\n",
               what.c_str(), model::terminal_safe(request.out_path).c_str(),
               request.duration_ms ? "it ends, the duration passes, or Ctrl-C" : "it ends (or Ctrl-C)");
}

}  // namespace

std::optional<RecordOutcome> record_tree(const RecordRequest& request,
                                         const std::function<pid_t(const std::vector<std::string>&)>& start_root) {
  // A command memdx starts inherits memdx's descriptors: whether the live view may draw is known
  // before it starts, and the line saying memdx is at work comes before the command's own.
  LiveView live;
  record::TreeRecordingObserver observer;
  observer.before_root_starts = [&] {
    if (!request.root_is_child || request.quiet) return;
    live = LiveView(::getpid());
    say_recording("the command", request, live.enabled());
  };
  observer.root_started = [&](pid_t root) {
    if (request.root_is_child || request.quiet) return;
    live = LiveView(root);
    say_recording(fmt::format("pid {}", root), request, live.enabled());
  };
  observer.on_tick = [&live](const record::TickStatus& status) {
    if (live.enabled()) live.update(status);
  };
  observer.on_store_error = [&live](const std::string& reason) {
    live.clear();
    say_store_error(reason);
  };
  if (request.root_is_child && request.follow_tree) {
    observer.on_root_exit = [&](const std::vector<model::ProcessRecord>& running) {
      live.clear();
      say_left_running(request, running);
    };
  }
  observer.session_ended = [&](const record::SessionResult& session) {
    live.clear();
    if (request.root_is_child && session.end == record::SessionResult::End::kRootExited &&
        !session.still_running.empty()) {
      say_left_running(request, session.still_running);
    }
  };
  record::TreeRecordingRequest tree = request;
  tree.environment = record::current_environment();
  try {
    return record::record_tree(proc::ProcFs(), tree, observer, start_root);
  } catch (const std::runtime_error& e) {  // store::StoreError among them
    throw RuntimeError(e.what());
  }
}

}  // namespace memdx::cli
