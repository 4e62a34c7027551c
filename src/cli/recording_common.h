// Pieces shared by the recording commands (run, watch, report): output paths checked before
// anything starts, recording metadata, and writing the verdict.
#pragma once

#include <sys/types.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <functional>
#include <optional>

#include "analyze/analysis.h"
#include "analyze/diagnose.h"
#include "analyze/heap_profile.h"
#include "analyze/heap_sites.h"
#include "cli/output_file.h"
#include "cli/tracing.h"
#include "model/recording.h"
#include "model/verdict.h"
#include "record/session.h"
#include "record/trace_collector.h"
#include "record/tree_recording.h"
#include "report/folded.h"
#include "report/html.h"
#include "report/verdict_text.h"

namespace CLI {
class App;
}

namespace memdx::cli {

// "./memdx-<name>-<yyyymmdd-hhmmss>.memdx" in the current directory, name made file-safe.
std::string default_recording_path(const std::string& name);

using analyze::Analysis;

// Sites per traced process image kept in the verdict: the first of each ranking.
inline constexpr size_t kHeapSitesInJson = 20;

// How the commands that name call sites (run, report) find and show them.
struct SiteChoices {
  // --debug-dir DIR, repeatable: where the separate debug files of stripped programs and
  // libraries are (analyze::Symbolizer).
  std::vector<std::string> debug_dirs;
  std::vector<std::string> suppression_files;  // --suppress FILE, repeatable
  bool all_paths = false;                      // --paths
  analyze::Suppressions suppressions;          // read from suppression_files by load()

  // Reads the suppression files. Throws RuntimeError with one line naming the file and line:
  // call it before recording, so that a typo costs no run.
  void load();
  analyze::SiteOptions site_options(size_t site_limit, bool sites_judge_growth) const;
  // What the text shows of the sites as these choices say (--paths, the --suppress files).
  void apply_to(report::TextOptions& text) const;
};

// --debug-dir, --suppress and --paths.
void add_site_options(CLI::App& command, SiteChoices& choices);

// Diagnoses the recording and aggregates its heap trace, keeping the first `site_limit` sites of
// each ranking (0: all), found and shown as `sites` says (loaded). Shows a progress line on
// stderr while it reads a long trace, when stderr is a terminal. Throws RuntimeError with one
// line when the recording or its trace cannot be read.
Analysis analyze_recording(const std::string& recording_path, size_t site_limit = kHeapSitesInJson,
                           const SiteChoices& sites = {});

// From here on Ctrl-C, SIGTERM and SIGHUP end memdx at once (128+N), saying that the recording is
// kept and how to analyse it again; output files not yet written are never left half-written.
// analyze_recording calls it.
void stop_on_signal_during_analysis(const std::string& recording_path);

// The files a recording command writes besides the recording (closed ones are not written).
struct VerdictOutputs {
  OutputFile json;    // memdx.verdict/1
  OutputFile html;    // the self-contained HTML report
  OutputFile pprof;   // the heap trace as a gzipped pprof profile (report --pprof)
  OutputFile folded;  // the heap trace as folded stacks (report --folded)
  report::FoldedMetric folded_metric = report::FoldedMetric::kPeak;

  // Whether one of them writes to memdx's standard output: the text must go elsewhere.
  bool take_standard_output() const;
};

// The HTML page of an analysis. Throws RuntimeError when the recording cannot be read again.
std::string render_html_report(const Analysis& analysis, const report::HtmlOptions& options);

// What run, watch and report write of an analysis: the verdict's text (as `text` says) on
// `text_stream`, and every open file of `outputs`. `run` prints on stderr, since the command's
// stdout belongs to the command; an output on standard output (`--json -`) keeps stdout for
// itself, and the text goes to stderr. A heap-trace output (pprof, folded) of a recording without
// a heap trace, or one that cannot be rendered, fails with one line naming the file.
void write_verdict_outputs(const Analysis& analysis, const std::string& recording_path, const report::TextOptions& text,
                           const SiteChoices& sites, VerdictOutputs& outputs, std::FILE* text_stream);

// analyze_recording, then write_verdict_outputs with the default text.
model::Verdict analyze_and_report(const std::string& recording_path, VerdictOutputs& outputs, std::FILE* text_stream,
                                  const SiteChoices& sites = {});

// Writes memdx's text to `stream` (stdout or stderr). A reader that went away (a closed pipe:
// `memdx report R | head -1`) is said once on stderr and is no failure: the files are still
// written. Returns whether all of it was written.
bool print_text(std::FILE* stream, const std::string& text);

// A recording as the commands make it: the pipeline's request, and whether to stay quiet (no
// live view, no line saying memdx is at work).
struct RecordRequest : record::TreeRecordingRequest {
  bool quiet = false;
};

using record::TraceReceived;
using RecordOutcome = record::TreeRecordingOutcome;

// record::record_tree with what a user sees of it: the live view or one line that memdx is at
// work, what the root left running, and one line when writing the recording fails. Errors are
// RuntimeErrors with one line.
std::optional<RecordOutcome> record_tree(const RecordRequest& request,
                                         const std::function<pid_t(const std::vector<std::string>&)>& start_root);

// record_tree for a command memdx starts itself (run, trace): memdx becomes a child subreaper so
// daemons stay in the tree, and the command gets the environment record_tree chose.
std::optional<RecordOutcome> record_command(const RecordRequest& request, const std::string& path,
                                            const std::vector<std::string>& command);

// One line on stderr when the tracer was injected but no process ever connected (a program
// that clears LD_PRELOAD, or a static child): never a silently empty trace. Another when the
// collector refused connections that did not come from the traced programs.
void say_if_nothing_traced(const std::optional<TraceReceived>& trace);

}  // namespace memdx::cli
