// The terminal rendering of a verdict, printed by `memdx run` / `memdx watch` at exit and by
// `memdx report`: the verdict on the first line (leak or no leak, which kind, which process, what
// rate), then the evidence with its numbers, then what to look at next, then one row per process.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "model/verdict.h"

namespace memdx::report {

// How much of the heap trace the text shows: per process image (largest heaps first, the first
// processes_with_sites of them), four rankings of call sites (growth, live at the peak, live at
// the end, temporary allocations), each with its first sites_per_section and their stacks.
struct TextOptions {
  size_t sites_per_section = 3;
  size_t stack_frames = 4;
  size_t processes_with_sites = 3;
  std::string recording_path;                  // named in the next steps; "RECORDING" when empty
  bool all_paths = false;                      // every path (distinct stack) of each site shown, with its figures
  std::vector<std::string> suppression_files;  // --suppress: named where what they hid is said
};

// The verdict in one line, as the text opens with it: "LEAK: live heap of pid 42 (./app) grows
// 2.00 MiB/s (confidence >99.9%)" or "No leak: memory stayed bounded in 3 processes over 12.0 s".
std::string verdict_headline(const model::Verdict& verdict);

// Whether `finding` is one of many "this process stayed bounded" that are counted rather than said:
// a no_growth of a process other than the root. A tree of a thousand workers is one sentence and a
// count in every output, not a thousand lines.
bool counted_only_bounded(const model::Verdict& verdict, const model::Finding& finding);

// What to do next, one step per leak ("pid 42 heap_growth: look at `append_span` (telemetry.cpp:42):
// it holds 24.1 MiB and grows 3.20 MiB/s; ..."), naming the recording where a command needs it
// ("RECORDING" when empty). Empty when nothing leaks and the run was long enough to judge.
std::vector<std::string> next_steps(const model::Verdict& verdict, const std::string& recording_path);

std::string render_verdict_text(const model::Verdict& verdict, const TextOptions& options = {});

// "42 s", "25 min", "3.5 h", "2.1 days": a projected duration, rounded for reading.
std::string format_duration(double seconds);

}  // namespace memdx::report
