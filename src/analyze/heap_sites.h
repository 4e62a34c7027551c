// Call sites of the heap trace: stacks grouped by the first frame that is the program's own code
// (not the C or C++ runtime, not an inlined std:: template, not operator new), symbolized.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "analyze/heap_profile.h"
#include "analyze/symbolize.h"
#include "model/verdict.h"

namespace memdx::analyze {

struct HeapSite {
  std::string function;  // demangled, or "module+0xoffset" when there are no symbols
  std::string file;
  uint32_t line = 0;
  AllocationStats stats;            // summed over the stacks of the site
  std::vector<std::string> stack;   // one formatted frame per entry, of the site's largest stack
};

// The symbolizer of one traced process image, from the modules its stream named.
Symbolizer symbolizer_for(const ProcessHeapProfile& profile);

// The sites of the malloc-family heap of one process, largest first by live bytes at the end,
// then peak live bytes, then bytes allocated. `limit` 0 means all.
std::vector<HeapSite> heap_sites(const ProcessHeapProfile& profile, Symbolizer& symbolizer, size_t limit);

// Fills verdict.heap from the trace, with the top `site_limit` sites of each process image,
// and each traced process's peak_heap_live_bytes.
void attach_heap_trace(model::Verdict& verdict, const HeapTrace& trace, size_t site_limit);

// How much each stack's live bytes grew over the process's life: the Theil-Sen slope of its live
// series (heap, or direct mappings with `mapped`) times the series' duration, rounded; stacks
// that did not grow are absent. The same slope ranks growth sites.
std::unordered_map<uint32_t, uint64_t> growth_bytes_by_stack(const ProcessHeapProfile& profile, bool mapped = false);

// Whether a frame belongs to the runtime (C/C++ runtime libraries, the loader, the allocation
// functions, std:: templates, the tracer) rather than to the program: sites skip such frames.
bool is_runtime_frame(const SourceFrame& frame);

// "function (file:line)" or "module+0xoffset".
std::string format_frame(const SourceFrame& frame);

}  // namespace memdx::analyze
