// The terminal rendering of a verdict, printed by `memdx run` / `memdx watch` at exit and by
// `memdx report`: the verdict on the first line (leak or no leak, which kind, which process, what
// rate), then the evidence with its numbers, then what to look at next, then one row per process.
#pragma once

#include <cstddef>
#include <string>

#include "model/verdict.h"

namespace memdx::report {

// How much of the heap trace the text shows: per process image (largest heaps first, the first
// processes_with_sites of them), four rankings of call sites (growth, live at the peak, live at
// the end, temporary allocations), each with its first sites_per_section and their stacks.
struct TextOptions {
  size_t sites_per_section = 3;
  size_t stack_frames = 4;
  size_t processes_with_sites = 3;
};

std::string render_verdict_text(const model::Verdict& verdict, const TextOptions& options = {});

// "42 s", "25 min", "3.5 h", "2.1 days": a projected duration, rounded for reading.
std::string format_duration(double seconds);

}  // namespace memdx::report
