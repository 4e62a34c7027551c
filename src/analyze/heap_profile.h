// What the heap trace says about each traced process image: allocation and free counts, bytes,
// peak and final live bytes, direct mappings, the timeline at each marker, and the same figures
// per stack. Built in one streaming pass over the recording's trace chunks.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "analyze/trace_decode.h"
#include "store/recording_reader.h"

namespace memdx::analyze {

// Counts and bytes of one stack (or one site). In sampling mode these are estimates, scaled by
// the inverse of each allocation's sampling probability.
struct AllocationStats {
  uint64_t allocations = 0;
  uint64_t frees = 0;
  uint64_t allocated_bytes = 0;
  uint64_t live_bytes = 0;   // at the end of the stream
  uint64_t live_blocks = 0;  // at the end of the stream
  uint64_t peak_live_bytes = 0;
  // Live when the process's whole heap (or its direct mappings) reached their peak: what has to
  // fit at the worst moment. Summing these over stacks gives the peak itself.
  uint64_t live_at_peak_bytes = 0;
  uint64_t live_at_peak_blocks = 0;
  // Freed by the thread directly after allocating it, with no other allocation or free between
  // (heaptrack's definition, per thread): churn that costs time, never memory.
  uint64_t temporary_allocations = 0;
  // Direct mappings only: address space mapped PROT_NONE at the end, reserved but not memory
  // (live_bytes counts only the accessible part).
  uint64_t reserved_bytes = 0;
};

// Live bytes of every stack at up to kSeriesPoints instants spread evenly (by marker count) over
// the process's life: the per-site time series that growth is ranked on. Bounded: when the
// points are full every other one is dropped and the stride between snapshots doubles.
inline constexpr size_t kSeriesPoints = 128;

struct LiveSeries {
  std::vector<uint64_t> monotonic_ns;  // the instants, increasing
  // Per stack, aligned with monotonic_ns (a stack first seen later has zeros before it).
  std::unordered_map<uint32_t, std::vector<float>> by_stack;
};

// One point per tracer marker (about every 100 ms while the process allocates).
struct HeapTimelinePoint {
  uint64_t monotonic_ns = 0;
  uint64_t rss_bytes = 0;          // from /proc/self/statm in the target
  uint64_t heap_live_bytes = 0;    // malloc family, as traced
  uint64_t mapped_live_bytes = 0;  // direct mmap, as traced
  uint64_t tracer_bytes = 0;       // the tracer's own memory in the target
};

struct MappedRegionStats {
  uint64_t maps = 0;
  uint64_t unmaps = 0;
  uint64_t mapped_bytes = 0;    // total ever mapped
  uint64_t live_bytes = 0;      // at the end, accessible (PROT_NONE reservations are not memory)
  uint64_t reserved_bytes = 0;  // at the end, mapped PROT_NONE
  uint64_t peak_reserved_bytes = 0;
  uint64_t peak_live_bytes = 0;
  uint64_t live_at_peak_bytes = 0;  // summed over stacks: equals peak_live_bytes
  uint64_t anon_live_bytes = 0;     // private or shared anonymous, at the end
  uint64_t shared_live_bytes = 0;   // MAP_SHARED (anonymous or file), at the end
};

// Sorts a process's stacks into groups (its call sites) while its trace is replayed, so that a
// group's peak is exact: the most its stacks held together, not each at its own peak. One per
// stream and pass; told of the modules as their records arrive.
class StackGrouping {
 public:
  static constexpr uint32_t kNoGroup = UINT32_MAX;
  virtual ~StackGrouping() = default;
  virtual void module_loaded(const TraceModule& module) = 0;
  virtual void module_unloaded(const TraceModule& module) = 0;  // its unload_seq is set
  // The group of a stack recorded at `seq` (its first use), dense from 0; kNoGroup for none.
  virtual uint32_t group_of(uint64_t seq, std::span<const uint64_t> frames) = 0;
};

struct ProcessHeapProfile {
  uint32_t stream = 0;
  pid_t pid = 0;
  pid_t ppid = 0;
  bool after_fork = false;
  uint64_t start_monotonic_ns = 0;
  uint64_t sample_bytes = 0;  // 0: every allocation traced
  uint32_t max_depth = 0;
  bool closed_cleanly = false;  // false: cut short (killed mid-batch, or still running)
  std::optional<TraceEnd> end;  // exit, exec or abort, when the process said so
  bool stack_table_full = false;
  // Its events reached the recording too far out of order for the first pass's window: the
  // figures come from the exact second pass.
  bool replayed_exactly = false;

  AllocationStats heap;          // malloc family and C++ new
  uint64_t unmatched_frees = 0;  // frees of blocks allocated before tracing began
  MappedRegionStats mapped;      // mmap/munmap/mremap called by the program
  uint64_t peak_rss_bytes = 0;
  uint64_t peak_tracer_bytes = 0;
  std::vector<HeapTimelinePoint> timeline;

  std::vector<TraceModule> modules;                            // every module seen, in load order
  std::unordered_map<uint32_t, std::vector<uint64_t>> stacks;  // id -> return addresses, innermost first
  // id -> seq of the stack's first use: its frames are of the modules mapped then. A stack absent
  // here (a profile not read from a trace) is taken as of the end of the process.
  std::unordered_map<uint32_t, uint64_t> stack_seqs;
  std::unordered_map<uint32_t, AllocationStats> heap_by_stack;
  std::unordered_map<uint32_t, AllocationStats> mapped_by_stack;
  LiveSeries heap_series;    // of heap_by_stack's live bytes
  LiveSeries mapped_series;  // of mapped_by_stack's live bytes

  // With HeapTraceOptions::grouping: the grouping its replay used, each stack's group
  // (StackGrouping::kNoGroup: none), and the peak of each group's heap and mapped live bytes.
  std::shared_ptr<StackGrouping> grouping;
  std::unordered_map<uint32_t, uint32_t> stack_groups;
  std::vector<uint64_t> heap_group_peak_bytes;
  std::vector<uint64_t> mapped_group_peak_bytes;
};

struct HeapTrace {
  std::vector<ProcessHeapProfile> processes;  // in stream order
  TraceReadStats read;
};

struct HeapTraceOptions {
  // The first pass applies events in seq order within a window of this many bytes of the threads'
  // encoded batches (about 3.5 bytes an event).
  uint64_t window_bytes = uint64_t{4} << 20;
  // A process whose events reached the recording too far out of order for the first pass is
  // replayed exactly in a second; it keeps this many bytes of the threads' encoded batches in
  // memory, and the rest in an unnamed temporary file.
  uint64_t exact_replay_memory_bytes = uint64_t{24} << 20;
  // Makes each stream's StackGrouping (called once per stream and pass); none: no groups.
  std::function<std::shared_ptr<StackGrouping>()> grouping;
};

// Reads and aggregates the heap trace of a recording; an empty result when it has none.
// Throws TraceFormatError.
HeapTrace build_heap_trace(const store::RecordingReader& recording,
                           const std::function<void(uint64_t, uint64_t)>& progress = {},
                           const HeapTraceOptions& options = {});

}  // namespace memdx::analyze
