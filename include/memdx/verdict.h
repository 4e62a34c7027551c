// The verdict memdx gives on a recording (`memdx run`, `memdx watch`, `memdx report`, and
// memdx::analyze_recording): the processes, what the heap tracer saw, the findings and the
// hypotheses checked. Sizes are bytes, times seconds, rates per second. A value that is unknown is
// absent (std::nullopt), never zero. Its JSON form is memdx.verdict/1 (memdx::verdict_json).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "memdx/export.h"

namespace memdx {

// The verdict's vocabulary. Each enum's to_string() is its name in the JSON (memdx.verdict/1)
// and in the text; code compares the enums, never the names.

// What a finding concludes about a process (DESIGN.md lists what each means).
enum class FindingKind {
  kHeapGrowth,          // heap_growth: the malloc heap's live bytes grow (heap tracer)
  kAnonGrowth,          // anon_growth: anonymous memory grows (anon RSS, with swap when it pages out)
  kFileGrowth,          // file_growth: file-backed pages grow (page cache: reclaimable)
  kShmemGrowth,         // shmem_growth: shared memory, tmpfs or memfd grows
  kFdGrowth,            // fd_growth: open file descriptors grow
  kThreadGrowth,        // thread_growth: threads grow
  kGpuGrowth,           // gpu_growth: GPU memory grows
  kAllocatorRetention,  // allocator_retention: RSS far above the live heap (freed memory kept)
  kReservationOnly,     // reservation_only: address space reserved, not used (VSZ >> RSS)
  kNoGrowth,            // no_growth: judged, and nothing grows without bound
};

enum class Severity {
  kLeak,     // leak: unbounded growth that will exhaust memory
  kWarning,  // warning
  kInfo,     // info
};

// The candidate explanations every judged process is checked against, in the order outputs list them.
enum class HypothesisKind {
  kHeapGrowth,          // heap_growth
  kAnonGrowth,          // anon_growth
  kAllocatorRetention,  // allocator_retention
  kReservationOnly,     // reservation_only
  kFileGrowth,          // file_growth
  kShmemGrowth,         // shmem_growth
  kFdGrowth,            // fd_growth
  kThreadGrowth,        // thread_growth
  kChildGrowth,         // child_growth: a child process, not the root, holds the growth
  kGpuGrowth,           // gpu_growth
  kSwapGrowth,          // swap_growth: swap hides the growth
  kLimitApproach,       // limit_approach: the process approaches its memory limit
};

enum class HypothesisStatus {
  kConfirmed,     // confirmed
  kEliminated,    // eliminated
  kInconclusive,  // inconclusive: measured, but the numbers cannot decide
  kNotMeasured,   // not_measured: memdx did not measure what it needs (GPU memory)
};

// The series a finding was judged on.
enum class Series {
  kRss,              // rss_bytes
  kRssAnon,          // rss_anon_bytes
  kRssAnonWithSwap,  // rss_anon_bytes+swap_bytes: anon memory, counting what was paged out
  kRssFile,          // rss_file_bytes
  kRssShmem,         // rss_shmem_bytes
  kSwap,             // swap_bytes
  kVsz,              // vsz_bytes
  kHeapLive,         // heap_live_bytes: the heap tracer's live bytes
  kHeapSiteLive,     // heap_site_live_bytes: one call site's live bytes
  kFds,              // fds
  kThreads,          // threads
  kGpu,              // gpu_bytes: GPU memory over the process's devices (NVML, DRM fdinfo)
};

enum class Unit {
  kBytes,    // bytes
  kFds,      // fds
  kThreads,  // threads
};

// The memory limit a growing process runs into.
enum class LimitKind {
  kCgroupMemoryMax,  // "cgroup memory.max"
  kMemAvailable,     // "MemAvailable"
};

// How a traced process image's heap trace ended.
enum class StreamEnd {
  kExit,       // exit: the process exited
  kExec,       // exec: it exec'd another program (a new image follows)
  kAbort,      // abort: abort() was called
  kKilled,     // killed: no end record, the stream closed (a signal)
  kTraceLost,  // trace lost: no end record, yet the process exited with a code (its stream was cut)
  kCutShort,   // cut short: still running when the recording stopped
};

MEMDX_API const char* to_string(FindingKind kind);
MEMDX_API const char* to_string(Severity severity);
MEMDX_API const char* to_string(HypothesisKind kind);
MEMDX_API const char* to_string(HypothesisStatus status);
MEMDX_API const char* to_string(Series series);
MEMDX_API const char* to_string(Unit unit);
MEMDX_API const char* to_string(LimitKind limit);
MEMDX_API const char* to_string(StreamEnd end);

// A frame of a site's stack without a name: no symbol covers it, and no separate debug file was
// found. `addr2line -f -C -e MODULE 0xOFFSET` names it where debug information exists elsewhere.
// Not in the JSON (whose stack already reads "module+0xoffset"): the text says how to resolve them.
struct UnnamedFrame {
  size_t stack_index = 0;  // in the site's `stack`; 0 is the site's own frame
  std::string module;      // the ELF's path when it was recorded
  uint64_t offset = 0;     // in the module, as addr2line takes it
};

// A call site holding growing live memory (from the heap trace), in a growth finding.
struct Site {
  std::string function;
  std::string file;
  int line = 0;
  uint64_t live_bytes = 0;  // still live at the end: 0 for a container freed at exit
  double growth_bytes_per_s = 0;
  std::vector<std::string> stack;   // innermost frame first
  uint64_t live_at_peak_bytes = 0;  // live when the process's heap (or mappings) peaked
  std::vector<UnnamedFrame> unnamed_frames;
};

// One conclusion about one process, backed by numbers. The rate is in the unit of the series.
// JSON carries it twice: `rate_per_s` always, and `rate_bytes_per_s` (the DESIGN.md field) only
// for byte series, null for counts, so a script never reads fds per second as bytes per second.
struct Finding {
  FindingKind kind = FindingKind::kNoGrowth;
  Severity severity = Severity::kInfo;
  pid_t pid = 0;
  Series series = Series::kRss;  // the tested series
  Unit unit = Unit::kBytes;      // of the series
  double rate_per_s = 0;
  // 1 - Mann-Kendall p for trend findings; for no_growth the level (1 - alpha) at which no trend
  // was found, 0 when the run was too short to test; 1 for plain measurements (reservation_only).
  double confidence = 0;
  std::string evidence;    // one sentence with the numbers
  double start_level = 0;  // of `series`, in `unit`
  double end_level = 0;
  std::optional<double> time_to_limit_s;  // leak findings on byte series: when the limit is reached
  std::optional<LimitKind> limit;         // which limit, with time_to_limit_s
  std::optional<uint64_t> limit_bytes;    // the limit's value, with time_to_limit_s
  std::vector<Site> sites;
  std::vector<std::string> devices;  // gpu_growth: the GPUs the memory is on, "nvidia0 (NVIDIA H200)"

  bool is_bytes() const { return unit == Unit::kBytes; }
};

// One candidate explanation of a process's memory, checked against the measurements: the rows of
// a differential diagnosis. Every judged process gets every hypothesis, so a reader sees what was
// ruled out as well as what was found.
struct Hypothesis {
  HypothesisKind kind = HypothesisKind::kHeapGrowth;  // "name" in the JSON
  pid_t pid = 0;
  HypothesisStatus status = HypothesisStatus::kInconclusive;
  std::string statement;  // the hypothesis in words, "the malloc heap grows"
  std::string evidence;   // one sentence with the numbers that decide the status
};

// One process of the recorded tree, summarised.
struct ProcessSummary {
  pid_t pid = 0;
  pid_t ppid = 0;
  std::string command;  // argv joined by spaces
  uint64_t peak_rss_bytes = 0;
  std::optional<uint64_t> peak_pss_bytes;  // absent when smaps_rollup was never read
  uint64_t peak_vsz_bytes = 0;
  std::optional<uint64_t> peak_heap_live_bytes;  // absent without the heap tracer
  uint64_t final_rss_bytes = 0;                  // of the last sample
  std::optional<int> exit_code;
  std::optional<int> exit_signal;
  double first_seen_s = 0;  // since the recording started
  std::optional<double> exited_s;
  // Whether the process is alive when the verdict is given, so that advice may name its pid:
  // diagnose() says true when the recording did not see it exit (a watch stopped by its duration),
  // and memdx clears it when the pid is gone by the time it reports. Not in the JSON: it says
  // nothing about the recording, only about the moment of reading it.
  bool still_running = false;
};

struct Target {
  std::vector<std::string> command;
  pid_t pid = 0;
  std::optional<int> exit_code;
  std::optional<int> exit_signal;
  double duration_s = 0;
};

// One distinct stack of a call site (a "path" to it, as heaptrack calls it), with its own figures.
struct HeapSitePath {
  uint64_t allocations = 0;
  uint64_t allocated_bytes = 0;
  uint64_t peak_live_bytes = 0;  // the highest its own live bytes reached
  uint64_t live_at_peak_bytes = 0;
  uint64_t final_live_bytes = 0;
  uint64_t final_live_blocks = 0;
  uint64_t temporary_allocations = 0;
  double growth_bytes_per_s = 0;   // Theil-Sen slope of its own live bytes; 0 when not rising
  std::vector<std::string> stack;  // from the site's own frame outwards
  std::vector<UnnamedFrame> unnamed_frames;
};

// A call site of the heap trace with its totals (the site is the first frame of the program's
// own code; the stack is its largest one, innermost first).
struct HeapSiteSummary {
  std::string function;
  std::string file;
  int line = 0;
  uint64_t allocations = 0;
  uint64_t allocated_bytes = 0;
  // The most its stacks held at once (the replay keeps each site's own peak). When
  // peak_live_bytes_exact is false (the replay's grouping of its stacks could not be trusted),
  // the least of the sum of its stacks' own peaks and the process's peak: an upper bound.
  uint64_t peak_live_bytes = 0;
  bool peak_live_bytes_exact = true;
  uint64_t live_at_peak_bytes = 0;  // live when the process's heap was at its peak
  uint64_t final_live_bytes = 0;    // still allocated when the process ended (or the trace stopped)
  uint64_t final_live_blocks = 0;
  uint64_t temporary_allocations = 0;  // freed by the thread right after, nothing else between
  // Direct mappings: address space still mapped PROT_NONE at the end (reserved, not memory: the
  // live figures count only what is accessible).
  uint64_t reserved_bytes = 0;
  // Non-empty for the runtime's blocks kept by design (a stdio buffer, the time zone, the loader's
  // bookkeeping, libstdc++'s exception pool): what they are. Listed after the program's leaks.
  std::string runtime_once;
  double growth_bytes_per_s = 0;   // Theil-Sen slope of its live bytes; 0 when not rising
  bool growing = false;            // its own live bytes pass the trend test for unbounded growth
  std::vector<std::string> stack;  // innermost frame first: the site's own, then its callers
  std::vector<UnnamedFrame> unnamed_frames;
  // Its distinct stacks: `paths` holds the one that leads each ranking (most growth, most live at
  // the peak, most live at the end, most temporaries), or all of them with --paths; path_count
  // says how many there are.
  uint64_t path_count = 0;
  std::vector<HeapSitePath> paths;
};

// Stacks hidden from the sites by --suppress, heap and direct mappings together: what they held.
struct SuppressedStacks {
  uint64_t stacks = 0;
  uint64_t allocations = 0;
  uint64_t allocated_bytes = 0;
  uint64_t final_live_bytes = 0;
  uint64_t live_at_peak_bytes = 0;  // heap and mappings each at their own peak
};

// What the heap tracer saw in one process image (a forked child and an exec'd image are each
// one). With sampling (sample_bytes > 0) counts and bytes are unbiased estimates.
struct HeapSummary {
  pid_t pid = 0;
  pid_t ppid = 0;
  StreamEnd ended = StreamEnd::kCutShort;
  uint64_t sample_bytes = 0;
  uint64_t allocations = 0;
  uint64_t frees = 0;
  uint64_t allocated_bytes = 0;
  uint64_t peak_live_bytes = 0;
  uint64_t final_live_bytes = 0;
  uint64_t final_live_blocks = 0;
  uint64_t temporary_allocations = 0;
  uint64_t unmatched_frees = 0;  // of blocks from before tracing started
  uint64_t maps = 0;             // direct mmap calls of the program
  uint64_t mapped_bytes = 0;
  uint64_t peak_mapped_live_bytes = 0;
  uint64_t final_mapped_live_bytes = 0;      // accessible
  uint64_t final_mapped_reserved_bytes = 0;  // mapped PROT_NONE: address space, not memory
  uint64_t peak_mapped_reserved_bytes = 0;
  uint64_t peak_tracer_bytes = 0;  // the tracer's own memory in the process
  uint64_t distinct_stacks = 0;
  double duration_s = 0;                      // from the first to the last event traced
  std::vector<HeapSiteSummary> sites;         // heap sites among the first of any ranking, largest final live first
  std::vector<HeapSiteSummary> mapped_sites;  // the same for direct mmap regions
  SuppressedStacks suppressed;                // not among the sites: what --suppress hid
};

struct Verdict {
  Target target;
  std::vector<ProcessSummary> processes;
  std::vector<HeapSummary> heap;  // empty without the heap tracer
  std::vector<Finding> findings;  // leaks first (fastest first), then warnings, then info
  std::vector<Hypothesis> hypotheses;
};

// Whether any finding is a leak (Severity::kLeak): unbounded growth that will exhaust memory (what
// `memdx run --fail-on-leak` exits 3 on).
MEMDX_API bool has_leak(const Verdict& verdict);

// The verdict as memdx.verdict/1 JSON text (what `memdx report --json` writes), for a script or a
// file. Never throws but std::bad_alloc.
MEMDX_API std::string verdict_json(const Verdict& verdict);

}  // namespace memdx
