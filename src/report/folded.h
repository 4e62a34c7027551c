// The heap trace as folded stacks, the input of flame graph tools (Brendan Gregg's
// flamegraph.pl, inferno, speedscope): one line per stack, "outer;...;leaf VALUE".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "analyze/heap_profile.h"

namespace memdx::report {

// What a folded line's value counts, in bytes of the malloc-family heap of the stack.
enum class FoldedMetric {
  kPeak,       // live when the process's heap peaked (live_at_peak_bytes)
  kGrowth,     // growth of live bytes over the process's life, heap and direct mappings (growth_bytes_by_stack)
  kLeaked,     // still live when the trace ended
  kAllocated,  // allocated in total, freed or not
};

// The metric `--metric NAME` names: "peak", "growth", "leaked" or "allocated"; nullopt otherwise.
std::optional<FoldedMetric> folded_metric_named(std::string_view name);
inline constexpr std::string_view kFoldedMetricNames = "peak, growth, leaked or allocated";

// One line per distinct folded stack of every traced process image, frames outermost first,
// joined by ';', then a space and the value; stacks whose value is 0 are left out, so the values
// add up to the trace's total for the metric. Frames are function names (an inlined function is
// a frame of its own), or "module+0xoffset" without symbols. The runtime's frames at the leaf
// end (malloc, operator new, the C++ library's templates) are dropped, so the leaves are the
// program's own code; a stack made only of the runtime's frames keeps them all. With more than
// one process image the root frame is "pid N (program)". Lines are sorted, identical stacks
// merged. Symbolizes every stack it prints (opens each process's modules, and looks for separate
// debug files in `debug_dirs` too).
std::string render_folded(const analyze::HeapTrace& trace, FoldedMetric metric,
                          const std::vector<std::string>& debug_dirs = {});

// One stack of the heap trace with its value: what a folded line says, before it is text.
struct FoldedStack {
  std::vector<std::string> frames;  // outermost first; names as they are (';' not yet replaced)
  uint64_t value = 0;
};

// The stacks render_folded prints, as render_folded chooses and merges them (one per distinct
// frame list, none of value 0), ordered by their frames. The HTML flame graphs build their trees
// from these, without printing and parsing text.
std::vector<FoldedStack> folded_stacks(const analyze::HeapTrace& trace, FoldedMetric metric,
                                       const std::vector<std::string>& debug_dirs = {});

}  // namespace memdx::report
