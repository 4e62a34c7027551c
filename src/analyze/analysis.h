// The analysis of a recording, from its file to the verdict: the pipeline behind `memdx run`,
// `memdx report`, `memdx watch` and libmemdx's analyze_recording(). Reads the file; prints nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "analyze/diagnose.h"
#include "analyze/heap_profile.h"
#include "analyze/heap_sites.h"
#include "model/verdict.h"

namespace memdx::analyze {

// A recording analysed: the verdict (findings with their sites) and the heap trace behind it.
struct Analysis {
  model::Verdict verdict;
  RecordingData data;  // the samples behind it, for the HTML report's timelines
  HeapTrace heap;      // empty without the heap tracer
};

struct AnalysisOptions {
  // Which sites are kept and how they are named. sites_judge_growth is decided here (not for a
  // `memdx trace` capture, which has no samples).
  SiteOptions sites;
  // Called as the heap trace is read (done of total bytes; total 0 when unknown).
  std::function<void(uint64_t done_bytes, uint64_t total_bytes)> on_progress;
  std::function<void()> on_trace_read;  // the heap trace is read: what showed progress may go
};

// Diagnoses the recording at `path` and aggregates its heap trace. A process the recording did
// not see exit and that is gone now (or is another program under the same pid) is no longer
// `still_running`. Throws store::StoreError when the recording cannot be read and TraceFormatError
// when its heap trace is damaged.
Analysis analyze_recording(const std::string& path, const AnalysisOptions& options);

}  // namespace memdx::analyze
