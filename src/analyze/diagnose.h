// The diagnosis engine: turns a recording (per-process samples of a process tree, plus machine and
// cgroup samples) into a verdict: per process, which memory series grow without bound, how fast,
// how sure we are, and when the memory limit would be reached at that rate.
//
// Pure computation on loaded values (the RecordingReader overload only loads them first): no
// printing, no state, safe to call from any thread on distinct inputs.
//
// Per process with enough samples (see DiagnoseOptions), each series is judged by test_trend
// (trend.h: warm-up skipped, Theil-Sen + Mann-Kendall with autocorrelation care, sawtooth judged on
// its minima, growth must persist) and mapped to the findings of DESIGN.md:
//   rss_anon_bytes  growing -> anon_growth  (leak)   swap growth is added to its evidence; anon + swap
//                                                    growing while resident anon is capped -> anon_growth
//   heap_live_bytes growing -> heap_growth  (leak)   when the tracer recorded it; anon_growth is then
//                                                    kept only if anon clearly outgrows the heap
//   anon RSS >= 2x traced live heap + mappings, 32 MiB beyond,
//   most of the excess freed from the heap's peak, heap not growing -> allocator_retention (warning)
//   rss_shmem_bytes growing -> shmem_growth (leak)
//   rss_file_bytes  growing -> file_growth  (info)   page cache is reclaimable, normally not a leak
//   fds             growing -> fd_growth    (leak)
//   threads         growing -> thread_growth (leak)
//   peak VSZ >= 10x peak RSS and >= 1 GiB -> reservation_only (info)
//   nothing grew            -> no_growth    (info)
// Processes too short-lived to judge get no finding; when no process could be judged the root gets
// one no_growth finding saying the run was too short and what is needed.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "analyze/trend.h"
#include "model/recording.h"
#include "model/verdict.h"

namespace memdx::store {
class RecordingReader;
}

namespace memdx::analyze {

// Every threshold of the diagnosis, in one place. Why these values:
//
// Byte series (anon, shmem, file, swap, live heap): a leak must grow at least 64 KiB/s (5.3 GiB a
// day: anything that fast exhausts a machine within days) AND by 10% of its level after warm-up.
// Below 64 KiB/s a seconds-long recording cannot tell a leak from healthy drift: lazily touched
// heap pages, arenas of new threads, allocator caches move anon by hundreds of KiB, and the 10%
// keeps a big process's fragmentation creep out. On long windows a slower leak is real and
// measurable, so the floor falls to what adds up to 4 MiB over the window (64 KiB/s at 64 s,
// 4 KiB/s at 17 min) but never below 4 KiB/s (350 MiB a day).
//
// fds: 0.2/s AND +8 in total. Programs open a handful of fds lazily (logs, sockets, epoll,
// /dev/urandom); eight more than at the start, still rising, is a pattern, not start-up.
// threads: 0.1/s AND +4 in total. Thread pools grow to their size once (the persistence rule of
// test_trend then calls them bounded); four more and still rising is threads never joined.
struct DiagnoseOptions {
  TrendOptions bytes = bytes_trend_options();
  double bytes_floor_total = 4.0 * 1024 * 1024;  // long windows: floor = this / window ...
  double bytes_floor_min_per_s = 4.0 * 1024;     // ... but never below this
  TrendOptions fds = count_trend_options(0.2);
  double fds_min_growth = 8;
  TrendOptions threads = count_trend_options(0.1);
  double threads_min_growth = 4;
  // heap_growth already explains anon growth up to this multiple of the heap's slope (plus the
  // bytes floor): allocator overhead and fragmentation make anon rise somewhat faster than live bytes.
  double anon_beyond_heap_factor = 1.5;
  // allocator_retention: at the end, anon RSS beyond the traced live heap and direct mappings is at
  // least this many bytes AND anon RSS is at least retention_factor times what is live. Below
  // 32 MiB the rest of anon (stacks, .bss, the runtime's own arenas, the tracer) explains it.
  uint64_t retention_min_bytes = uint64_t{32} << 20;
  double retention_factor = 2.0;
  // ... AND the heap's peak was above its final level by this share of the excess: freed memory.
  double retention_freed_share = 0.5;
  double reservation_vsz_to_rss = 10.0;  // as analyze/notes.h for `inspect`
  uint64_t reservation_min_vsz_bytes = uint64_t{1} << 30;

  static TrendOptions bytes_trend_options();
  static TrendOptions count_trend_options(double min_growth_abs_per_s);
};

// What the heap tracer saw of one process: its live bytes at each tracer marker (about every
// 100 ms while it allocates); times in seconds on the tracer's clock (any origin).
struct TracedMemory {
  std::vector<SeriesPoint> heap_live_bytes;    // malloc family and C++ new
  std::vector<SeriesPoint> mapped_live_bytes;  // direct mmap by the program
  // The true peak of the live heap: between two points the heap can rise and fall again.
  double heap_peak_bytes = 0;
};

// A recording already in memory.
struct RecordingData {
  model::RecordingMeta meta;
  std::vector<model::ProcessRecord> processes;
  std::map<pid_t, std::vector<model::ProcessSample>> samples;  // each ordered by t_ms
  std::vector<model::SystemSample> system_samples;             // ordered by t_ms
  // The target's pid when the recording names it. Otherwise the root is the process seen first
  // (smallest first_seen_ms, then lowest pid): the recorder registers the root before any
  // descendant, so the first-seen process is the one `run` started or `watch` was pointed at.
  std::optional<pid_t> root_pid;
  // CLOCK_MONOTONIC at the recording's t_ms 0 (meta key "monotonic_origin_ns"; absent in
  // recordings made before it was stored): the heap tracer's instants minus this are t_ms.
  std::optional<int64_t> monotonic_origin_ns;
  // Where the samples of a process absent from `samples` come from: open_recording() reads a
  // recording one process at a time, so that memory is bounded by the largest process rather than
  // the whole tree (24 h of 1,000 processes is 12 million samples). Throws store::StoreError.
  std::function<std::vector<model::ProcessSample>(pid_t)> load_samples;
  // The samples of `pid`: held in `samples`, else loaded into `scratch`; empty when neither has them.
  const std::vector<model::ProcessSample>& samples_of(pid_t pid, std::vector<model::ProcessSample>& scratch) const;
  // From the heap trace, when there is one: the live-heap series is then trend-tested
  // (heap_growth) and compared with anon RSS (allocator_retention).
  std::map<pid_t, TracedMemory> traced;
};

model::Verdict diagnose(const RecordingData& data, const DiagnoseOptions& options = {});

// Every process's samples and the meta key "root_pid" when the recording has it. Throws
// store::StoreError when the recording cannot be read.
RecordingData load_recording(const store::RecordingReader& recording);

// The same without the samples: they are read per process, when asked for (load_samples), from
// the recording kept open. Throws store::StoreError when the recording cannot be read.
RecordingData open_recording(std::shared_ptr<const store::RecordingReader> recording);

// Loads every process's samples, then diagnoses. Reads the meta key "root_pid" when the recording
// has it. Throws store::StoreError when the recording cannot be read.
model::Verdict diagnose(const store::RecordingReader& recording, const DiagnoseOptions& options = {});

}  // namespace memdx::analyze
