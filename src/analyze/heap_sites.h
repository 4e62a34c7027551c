// Call sites of the heap trace: stacks grouped by the first frame that is the program's own code
// (not the C, C++ or Rust runtime, not an inlined std:: template, not operator new), symbolized.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "analyze/diagnose.h"
#include "analyze/heap_profile.h"
#include "analyze/suppressions.h"
#include "analyze/symbolize.h"
#include "analyze/trend.h"
#include "model/verdict.h"

namespace memdx::analyze {

// One stack of a site, with its own figures.
struct SitePath {
  uint32_t stack_id = 0;
  const std::vector<uint64_t>* frames = nullptr;  // the profile's
  uint64_t seq = Symbolizer::kLatest;             // when it was recorded (stack_seq)
  AllocationStats stats;
};

struct HeapSite {
  std::string function;  // demangled, or "module+0xoffset" when there are no symbols
  std::string file;
  uint32_t line = 0;
  // Summed over the stacks of the site, except peak_live_bytes: the site's own peak, from the
  // replay's grouping (site_grouping) or where its stacks' figures pin it down (peak_exact), else
  // the least of the sum of its stacks' peaks and the process's peak.
  AllocationStats stats;
  bool peak_exact = true;
  std::vector<SitePath> paths;      // its distinct stacks, largest (allocated or live at the end) first
  std::vector<double> live_series;  // live bytes at the profile's series instants
  // The Theil-Sen slope of live_series (bytes per second); 0 when it did not rise.
  double growth_bytes_per_s = 0;
  // The trend test (the recorder's, on the site's own series) calls it unbounded growth:
  // significant, above the bytes floor, and still rising in the last half of the run.
  bool growing = false;
  TrendResult trend;  // of live_series, when it was tested (kInsufficient otherwise)
  // Why its memory is the runtime's, allocated once and kept by design ("stdio buffer", "time
  // zone", "locale", "loader", "runtime start-up"); null for the program's own.
  const char* runtime_once = nullptr;
};

// Which of a process's memory the sites are of.
enum class SiteMemory { kHeap, kMapped };

// The symbolizer of one traced process image, from the modules its stream named, each with the
// time it was mapped: resolve a stack's frames at its stack_seq. Separate debug files are looked
// for in `debug_dirs` too (Symbolizer).
Symbolizer symbolizer_for(const ProcessHeapProfile& profile, const std::vector<std::string>& debug_dirs = {});

// When a stack was recorded (its first use), for Symbolizer::resolve_at; Symbolizer::kLatest
// when the profile does not say.
uint64_t stack_seq(const ProcessHeapProfile& profile, uint32_t stack_id);

// Every site of one process's heap (or direct mappings), in no particular order. Stacks that
// `suppressions` match are left out, and what they held is added to `suppressed`.
std::vector<HeapSite> heap_sites(const ProcessHeapProfile& profile, Symbolizer& symbolizer,
                                 SiteMemory memory = SiteMemory::kHeap, const Suppressions* suppressions = nullptr,
                                 model::SuppressedStacks* suppressed = nullptr);

// The site's largest stack (or `path`) from the site's own frame outwards, one formatted frame per entry
// (formatted only for the sites a report shows: symbolizing every frame of every stack would
// cost most of the analysis), and which of those frames have no name.
struct SiteStack {
  std::vector<std::string> frames;
  std::vector<model::UnnamedFrame> unnamed;  // by index in `frames`
};
SiteStack site_stack(const HeapSite& site, Symbolizer& symbolizer);
SiteStack path_stack(const SitePath& path, Symbolizer& symbolizer);

// The rankings of sites the reports show; each keeps only the sites that belong in it.
std::vector<const HeapSite*> growth_ranking(const std::vector<HeapSite>& sites);     // growing first, fastest first
std::vector<const HeapSite*> peak_ranking(const std::vector<HeapSite>& sites);       // most live at the peak
std::vector<const HeapSite*> leak_ranking(const std::vector<HeapSite>& sites);       // most still live at the end
std::vector<const HeapSite*> temporary_ranking(const std::vector<HeapSite>& sites);  // most temporary allocations

// Per pid, the live-heap and mapped series of the trace, for the diagnosis (diagnose.h). Of the
// images one pid ran (before and after exec), the one with the longest timeline.
std::map<pid_t, TracedMemory> traced_memory(const HeapTrace& trace);

struct SiteOptions {
  size_t site_limit = 20;  // sites kept of each ranking; 0: all
  // A recording with samples, whose processes were judged: a site whose own live bytes pass the
  // trend test confirms heap_growth even where the whole heap's swings hid it.
  bool sites_judge_growth = true;
  std::vector<std::string> debug_dirs;         // separate debug files are looked for there too
  const Suppressions* suppressions = nullptr;  // stacks hidden from the sites (--suppress); not owned
  bool all_paths = false;                      // every stack of each site kept (--paths), not one per ranking
};

// The grouping of stacks by call site for build_heap_trace (HeapTraceOptions::grouping): with
// it each site's peak_live_bytes is exact (the most its stacks held at once), and the sites are
// named with the symbolizer the replay built. Takes `options`' debug directories and
// suppressions (which must outlive the replay).
std::function<std::shared_ptr<StackGrouping>()> site_grouping(const SiteOptions& options);

// The symbolizer a site_grouping() replay built for the profile, with every module; null when
// the profile was built without one.
Symbolizer* replay_symbolizer(const ProcessHeapProfile& profile);

// The symbolizer to name a profile's frames with: the one its replay built, so that one analysis
// opens each module once and names each address once for the sites, pprof, folded stacks and the
// HTML page alike; else a new one (symbolizer_for), kept in `own`.
Symbolizer& symbolizer_of(const ProcessHeapProfile& profile, const std::vector<std::string>& debug_dirs,
                          std::unique_ptr<Symbolizer>& own);

// Fills verdict.heap from the trace (per process image: its totals and the sites among the
// first `site_limit` of any ranking), each traced process's peak_heap_live_bytes, and the sites
// of the verdict's heap_growth, anon_growth and shmem_growth findings.
void attach_heap_trace(model::Verdict& verdict, const HeapTrace& trace, const SiteOptions& options = {});

// How much each stack's live bytes grew over the process's life: the Theil-Sen slope of its live
// series (heap, or direct mappings with `mapped`) times the series' duration, rounded; stacks
// that did not grow are absent. The same slope ranks growth sites.
std::unordered_map<uint32_t, uint64_t> growth_bytes_by_stack(const ProcessHeapProfile& profile, bool mapped = false);

// The allocation functions themselves, by exact name (malloc, operator new, Rust's __rust_alloc
// shims): a program's own malloc_pool() is not one.
bool is_allocation_function(const std::string& name);

// Whether a frame belongs to the runtime rather than to the program: the C/C++ runtime libraries,
// the loader, the interpreters, the allocation functions, std:: templates and code from installed
// headers, Rust's standard library compiled into the program (its sources under /rustc/, or its
// alloc::, core::, std:: and hashbrown:: paths), the tracer. Sites skip such frames.
bool is_runtime_frame(const SourceFrame& frame);

// Whether a module (by path) is the C, C++ or Rust runtime, the loader, the Python or Node
// interpreter, or the tracer: symbolized from its symbol table only, its frames never sites.
bool is_runtime_module(const std::string& path);

// "function (file:line)" or "module+0xoffset".
std::string format_frame(const SourceFrame& frame);

}  // namespace memdx::analyze
