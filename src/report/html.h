// The HTML rendering of a recording's verdict (`memdx report REC --html FILE`, `memdx run --html
// FILE -- CMD`): one self-contained page that opens offline. Its Content-Security-Policy forbids
// every fetch; script and style sheet are inlined, and the page's numbers travel as one JSON blob
// (<script type="application/json" id="memdx-data">) that the inlined script draws as SVG.
//
// Static HTML (readable without script): the verdict with its headline and findings
// (<section id="verdict" data-leak>), the hypotheses (<table id="hypotheses">, one <tr> per
// hypothesis with data-name, data-pid, data-status), the top heap sites and the process tree.
// Drawn by the script from the blob: per-process timelines (bytes, VSZ, counts) and two flame
// graphs of the heap (live at its peak, growth).
//
// The page stays small on big recordings: each series is cut into at most buckets_per_series
// time buckets keeping each bucket's minimum and maximum (a one-sample spike survives), only the
// largest processes get full timelines, the rest a sparkline, and flame graphs are pruned.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "analyze/heap_profile.h"
#include "analyze/timelines.h"
#include "model/recording.h"
#include "model/verdict.h"

namespace memdx::report {

struct HtmlOptions {
  // Time buckets per series of a full timeline (min and max of each are kept).
  size_t buckets_per_series = 400;
  // Processes with full timelines: the root, then the largest by peak PSS (RSS where PSS was
  // never read). The others get a sparkline of RSS with sparkline_buckets points.
  size_t processes_with_timelines = 40;
  size_t sparkline_buckets = 32;
  // Flame graph nodes below this share of the total are folded into their parent; then at most
  // flame_max_nodes of the largest nodes are kept.
  double flame_min_share = 0.001;
  size_t flame_max_nodes = 1500;
  // Heap sites listed per process image, and how many process images list theirs.
  size_t sites_per_process = 10;
  size_t processes_with_sites = 10;
  // The recording the page describes, named in the next steps' commands.
  std::string recording_path;
  // Where separate debug files are looked for, besides the default places (analyze::Symbolizer).
  std::vector<std::string> debug_dirs;
};

// What the page shows, all of it read beforehand: rendering reads no file.
struct HtmlInput {
  const model::Verdict& verdict;
  const model::RecordingMeta& meta;
  const std::vector<model::ProcessRecord>& processes;
  // May be empty (no trace: the page says so instead of drawing flame graphs).
  const analyze::HeapTrace& heap;
  // As timeline_options() chose them.
  const analyze::ProcessTimelines& timelines;
};

// Which processes get full timelines, and how finely series are cut, for analyze::process_timelines:
// the root, then the largest by peak PSS (peak RSS when PSS was never read), up to
// options.processes_with_timelines in all.
analyze::TimelineOptions timeline_options(const model::Verdict& verdict, const HtmlOptions& options);

// The whole report as one HTML document. Symbolizes the heap trace's stacks (via render_folded).
std::string render_html(const HtmlInput& input, const HtmlOptions& options = {});

}  // namespace memdx::report
