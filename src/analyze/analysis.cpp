#include "analyze/analysis.h"

#include <memory>
#include <vector>

#include "model/format.h"
#include "proc/process_files.h"
#include "proc/procfs.h"
#include "store/recording_reader.h"

namespace memdx::analyze {
namespace {

// Whether `p` is still the process the recording saw: its pid alive with the same command line.
// A pid reused since by another program, or a process that rewrote its title, reads as gone: the
// advice then says to run the command again rather than name a pid that may be another's.
bool still_the_same(const proc::ProcFs& fs, const model::ProcessSummary& p) {
  auto cmdline = fs.read_pid_file(p.pid, "cmdline");
  if (!cmdline.ok()) return false;
  std::vector<std::string> argv = proc::parse_cmdline(*cmdline);
  return !argv.empty() && model::joined(argv) == p.command;
}

// The recording knows which processes it did not see exit; a recording analysed later may name
// processes that have exited since.
void forget_exited_since(model::Verdict& verdict) {
  proc::ProcFs fs;
  for (model::ProcessSummary& p : verdict.processes) {
    if (p.still_running && !still_the_same(fs, p)) p.still_running = false;
  }
}

}  // namespace

Analysis analyze_recording(const std::string& path, const AnalysisOptions& options) {
  Analysis analysis;
  auto reader = std::make_shared<const store::RecordingReader>(store::RecordingReader::open(path));
  SiteOptions site_options = options.sites;
  HeapTraceOptions trace_options;
  trace_options.grouping = site_grouping(site_options);  // exact peaks per site
  analysis.heap = build_heap_trace(*reader, options.on_progress, trace_options);
  if (options.on_trace_read) options.on_trace_read();
  // Samples are read one process at a time, by the diagnosis and again by the HTML page: a day
  // of a thousand processes would otherwise be held whole (1.2 GB).
  analysis.data = open_recording(reader);
  analysis.data.traced = traced_memory(analysis.heap);
  analysis.verdict = diagnose(analysis.data);
  forget_exited_since(analysis.verdict);
  // A `memdx trace` capture has no samples: a "too short to judge" finding would mislead.
  const bool is_trace = analysis.data.meta.kind == "trace";
  if (is_trace) analysis.verdict.findings.clear();
  site_options.sites_judge_growth = !is_trace;
  attach_heap_trace(analysis.verdict, analysis.heap, site_options);
  return analysis;
}

}  // namespace memdx::analyze
