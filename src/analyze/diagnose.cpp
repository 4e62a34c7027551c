#include "analyze/diagnose.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>
#include <utility>

#include "analyze/hypotheses.h"
#include "analyze/wording.h"
#include "model/format.h"
#include "store/recording_reader.h"
#include "store/schema.h"

namespace memdx::analyze {
namespace {

using model::Finding;
using model::ProcessRecord;
using model::ProcessSample;
using model::Verdict;

constexpr double kMsPerS = 1000.0;

// ---- series ------------------------------------------------------------------------------------

// What a finding says about the series it tested.
struct SeriesSpec {
  Series series;
  const char* label;  // in evidence sentences
  Unit unit;
};

constexpr SeriesSpec kAnon{Series::kRssAnon, "anon RSS", Unit::kBytes};
constexpr SeriesSpec kAnonSwap{Series::kRssAnonWithSwap, "anon memory including swap", Unit::kBytes};
constexpr SeriesSpec kFile{Series::kRssFile, "file-backed RSS", Unit::kBytes};
constexpr SeriesSpec kShmem{Series::kRssShmem, "shmem RSS", Unit::kBytes};
constexpr SeriesSpec kSwap{Series::kSwap, "swap", Unit::kBytes};
constexpr SeriesSpec kHeap{Series::kHeapLive, "live heap", Unit::kBytes};
constexpr SeriesSpec kFds{Series::kFds, "open fds", Unit::kFds};
constexpr SeriesSpec kThreads{Series::kThreads, "threads", Unit::kThreads};
constexpr SeriesSpec kGpu{Series::kGpu, "GPU memory", Unit::kBytes};

using SampleValue = double (*)(const ProcessSample&);

double seconds_of(int64_t t_ms) {
  return static_cast<double>(t_ms) / kMsPerS;
}

std::vector<SeriesPoint> series_of(const std::vector<ProcessSample>& samples, SampleValue value) {
  std::vector<SeriesPoint> points;
  points.reserve(samples.size());
  for (const ProcessSample& s : samples) points.push_back({seconds_of(s.t_ms), value(s)});
  return points;
}

// The tracer's own series when there is one, else the ticks where a sample carried it; empty
// without the tracer.
std::vector<SeriesPoint> heap_series(const std::vector<ProcessSample>& samples, const TracedMemory* traced) {
  if (traced && !traced->heap_live_bytes.empty()) return traced->heap_live_bytes;
  std::vector<SeriesPoint> points;
  for (const ProcessSample& s : samples) {
    if (s.heap_live_bytes) points.push_back({seconds_of(s.t_ms), static_cast<double>(*s.heap_live_bytes)});
  }
  return points;
}

// Seconds covered by the samples after the warm-up.
double window_s(const std::vector<ProcessSample>& samples, double warmup_s) {
  if (samples.empty()) return 0;
  double start_s = seconds_of(samples.front().t_ms) + warmup_s;
  auto first = std::find_if(samples.begin(), samples.end(), [&](auto& s) { return seconds_of(s.t_ms) >= start_s; });
  return first == samples.end() ? 0 : seconds_of(samples.back().t_ms) - seconds_of(first->t_ms);
}

size_t points_after_warmup(const std::vector<ProcessSample>& samples, double warmup_s) {
  if (samples.empty()) return 0;
  double start_s = seconds_of(samples.front().t_ms) + warmup_s;
  return static_cast<size_t>(
      std::count_if(samples.begin(), samples.end(), [&](auto& s) { return seconds_of(s.t_ms) >= start_s; }));
}

// The rule test_trend applies before judging (trend.h, step 2), checked once per process so that a
// process is either judged on all its series or on none.
bool long_enough(const std::vector<ProcessSample>& samples, const TrendOptions& o) {
  return window_s(samples, o.warmup_s) >= o.min_duration_s && points_after_warmup(samples, o.warmup_s) >= o.min_points;
}

// ---- the memory limit a leak runs into ---------------------------------------------------------

using MemoryLimit = LimitObservation;

std::optional<uint64_t> latest_cgroup_current(const std::vector<model::SystemSample>& system) {
  for (auto it = system.rbegin(); it != system.rend(); ++it) {
    if (it->cgroup_current_bytes) return it->cgroup_current_bytes;
  }
  return std::nullopt;
}

// The latest tick that could read MemAvailable.
std::optional<uint64_t> latest_mem_available(const std::vector<model::SystemSample>& system) {
  for (auto it = system.rbegin(); it != system.rend(); ++it) {
    if (it->mem_available_bytes) return it->mem_available_bytes;
  }
  return std::nullopt;
}

// The cgroup's memory.max when set and its usage was sampled (the OOM killer acts there first),
// else what the machine still has available.
std::optional<MemoryLimit> memory_limit(const RecordingData& data) {
  auto current = latest_cgroup_current(data.system_samples);
  if (data.meta.cgroup_max_bytes && current) {
    return MemoryLimit{LimitKind::kCgroupMemoryMax, static_cast<double>(*data.meta.cgroup_max_bytes),
                       static_cast<double>(*current)};
  }
  if (auto available = latest_mem_available(data.system_samples)) {
    return MemoryLimit{LimitKind::kMemAvailable, static_cast<double>(*available), 0};
  }
  return std::nullopt;
}

// ---- per process -------------------------------------------------------------------------------

struct ProcessContext {
  pid_t pid = 0;
  const std::vector<ProcessSample>& samples;
  const DiagnoseOptions& options;
  const std::optional<MemoryLimit>& limit;
  const TracedMemory* traced = nullptr;                   // null without the heap tracer
  const std::vector<std::string>* gpu_devices = nullptr;  // the GPUs it held memory on
};

using Tested = SeriesObservation;

// Findings of one process, plus the series that could not be judged (said in no_growth).
struct ProcessFindings {
  std::vector<Finding> findings;
  std::vector<std::string> not_judged;
  ProcessObservations seen;  // what the hypotheses are judged on
};

// The bytes floor for this process's window: 4 MiB over a long window is a leak too (DiagnoseOptions).
TrendOptions bytes_options(const ProcessContext& c) {
  TrendOptions o = c.options.bytes;
  double window = window_s(c.samples, o.warmup_s);
  double long_run_floor = window > 0 ? c.options.bytes_floor_total / window : o.min_growth_abs_per_s;
  o.min_growth_abs_per_s = std::min(o.min_growth_abs_per_s, std::max(c.options.bytes_floor_min_per_s, long_run_floor));
  return o;
}

Tested test_series(const ProcessContext& c, const SeriesSpec& spec, const std::vector<SeriesPoint>& points,
                   const TrendOptions& options, ProcessFindings& out) {
  Tested t{true, test_trend(points, options), window_s(c.samples, options.warmup_s)};
  if (t.trend.verdict == TrendVerdict::kInsufficient)
    out.not_judged.push_back(std::string(spec.label) + ": " + t.trend.reason);
  return t;
}

Tested test_bytes(const ProcessContext& c, const SeriesSpec& spec, SampleValue value, ProcessFindings& out) {
  return test_series(c, spec, series_of(c.samples, value), bytes_options(c), out);
}

// "anon RSS rose from 3.10 MiB to 27.0 MiB over 9.8 s (Theil-Sen slope 2.40 MiB/s, Mann-Kendall p<0.001)"
std::string growth_sentence(const SeriesSpec& spec, const Tested& t) {
  const TrendResult& r = t.trend;
  std::string what = r.used_envelope
                         ? fmt::format("the lows of {} (minima of {} sawtooth cycles)", spec.label, r.points_used)
                         : std::string(spec.label);
  return fmt::format("{} rose from {} to {} over {} (Theil-Sen slope {}, Mann-Kendall {})", what,
                     level_text(r.start_level, spec.unit), level_text(r.end_level, spec.unit), span_text(t.span_s),
                     rate_text(r.slope_per_s, spec.unit), p_text(r.p_value));
}

void project(const ProcessContext& c, const TrendResult& r, Finding& f) {
  if (!c.limit) return;
  f.time_to_limit_s = time_to_limit_s(r, c.limit->used_bytes, c.limit->limit_bytes);
  if (!f.time_to_limit_s) return;
  f.limit = c.limit->kind;
  f.limit_bytes = to_bytes(c.limit->limit_bytes);
}

Finding trend_finding(const ProcessContext& c, const SeriesSpec& spec, const Tested& t, FindingKind kind,
                      Severity severity) {
  Finding f;
  f.kind = kind;
  f.severity = severity;
  f.pid = c.pid;
  f.series = spec.series;
  f.unit = spec.unit;
  f.rate_per_s = t.trend.slope_per_s;
  f.confidence = t.trend.confidence;
  f.evidence = growth_sentence(spec, t);
  f.start_level = t.trend.start_level;
  f.end_level = t.trend.end_level;
  if (f.severity == Severity::kLeak && f.is_bytes()) project(c, t.trend, f);
  return f;
}

// heap_growth already explains anon growth that is not clearly faster than the heap's.
bool anon_beyond_heap(const ProcessContext& c, const Tested& anon, const Tested& heap) {
  if (!heap.growing()) return true;
  return anon.trend.slope_per_s >
         c.options.anon_beyond_heap_factor * heap.trend.slope_per_s + c.options.bytes.min_growth_abs_per_s;
}

// Anon pages of a leaking process under memory pressure go to swap: resident anon stops rising,
// anon + swap does not. Swapping out a bounded process leaves the sum flat.
void add_swapped_anon(const ProcessContext& c, ProcessFindings& out) {
  auto sum = [](const ProcessSample& s) { return static_cast<double>(s.rss_anon_bytes + s.swap_bytes); };
  Tested total = test_bytes(c, kAnonSwap, sum, out);
  if (!total.growing()) return;
  Finding f = trend_finding(c, kAnonSwap, total, FindingKind::kAnonGrowth, Severity::kLeak);
  f.evidence += "; resident anon stayed bounded because its pages are being pushed to swap";
  out.findings.push_back(std::move(f));
}

void add_heap_and_anon(const ProcessContext& c, ProcessFindings& out) {
  Tested heap;
  std::vector<SeriesPoint> heap_points = heap_series(c.samples, c.traced);
  if (!heap_points.empty()) heap = test_series(c, kHeap, heap_points, bytes_options(c), out);
  if (heap.growing()) out.findings.push_back(trend_finding(c, kHeap, heap, FindingKind::kHeapGrowth, Severity::kLeak));

  Tested anon = test_bytes(
      c, kAnon, [](const ProcessSample& s) { return static_cast<double>(s.rss_anon_bytes); }, out);
  Tested swap = test_bytes(
      c, kSwap, [](const ProcessSample& s) { return static_cast<double>(s.swap_bytes); }, out);
  out.seen.heap = heap;
  out.seen.anon = anon;
  out.seen.swap = swap;
  if (anon.growing()) {
    if (!anon_beyond_heap(c, anon, heap)) return;
    Finding f = trend_finding(c, kAnon, anon, FindingKind::kAnonGrowth, Severity::kLeak);
    if (!heap.measured) f.evidence += "; the heap was not traced, so this includes the malloc heap";
    if (swap.growing()) {
      f.evidence += fmt::format("; swap also rose from {} to {}", level_text(swap.trend.start_level, Unit::kBytes),
                                level_text(swap.trend.end_level, Unit::kBytes));
    }
    out.findings.push_back(std::move(f));
  } else if (swap.growing() && !heap.growing()) {
    add_swapped_anon(c, out);
  }
}

void add_shmem(const ProcessContext& c, ProcessFindings& out) {
  Tested shmem = test_bytes(
      c, kShmem, [](const ProcessSample& s) { return static_cast<double>(s.rss_shmem_bytes); }, out);
  out.seen.shmem = shmem;
  if (shmem.growing())
    out.findings.push_back(trend_finding(c, kShmem, shmem, FindingKind::kShmemGrowth, Severity::kLeak));
}

// GPU memory is judged by the same trend rules as every other series, on the ticks a source
// measured it. Its limit is the device's, not the cgroup's: no time to the memory limit.
void add_gpu(const ProcessContext& c, ProcessFindings& out) {
  std::vector<SeriesPoint> points;
  for (const ProcessSample& s : c.samples) {
    if (s.gpu_bytes) points.push_back({seconds_of(s.t_ms), static_cast<double>(*s.gpu_bytes)});
  }
  if (points.empty()) return;  // out.seen.gpu stays unmeasured
  out.seen.gpu = test_series(c, kGpu, points, bytes_options(c), out);
  if (!out.seen.gpu.growing()) return;
  Finding f = trend_finding(c, kGpu, out.seen.gpu, FindingKind::kGpuGrowth, Severity::kLeak);
  f.time_to_limit_s.reset();
  f.limit.reset();
  f.limit_bytes.reset();
  if (c.gpu_devices != nullptr && !c.gpu_devices->empty()) {
    f.devices = *c.gpu_devices;
    std::string on;
    for (const std::string& device : f.devices) on += (on.empty() ? "" : ", ") + device;
    f.evidence += " on " + on;
  }
  // The indexer's story: a language tracker and RSS show little while the device fills up.
  bool heap_flat = !out.seen.heap.growing();
  bool anon_flat = !out.seen.anon.growing();
  if (heap_flat && anon_flat) {
    f.evidence += out.seen.heap.measured ? "; the heap and anonymous memory are flat"
                                         : "; anonymous memory (the malloc heap included) is flat";
  }
  out.findings.push_back(std::move(f));
}

void add_file(const ProcessContext& c, ProcessFindings& out) {
  Tested file = test_bytes(
      c, kFile, [](const ProcessSample& s) { return static_cast<double>(s.rss_file_bytes); }, out);
  out.seen.file = file;
  if (!file.growing()) return;
  Finding f = trend_finding(c, kFile, file, FindingKind::kFileGrowth, Severity::kInfo);
  f.evidence += "; page cache / file-backed pages are reclaimable, normally not a leak";
  out.findings.push_back(std::move(f));
}

// Counts need a minimum total rise as well as a rate: a few fds or threads opened lazily are start-up.
// Returns the leak finding, or null.
Finding* add_count(const ProcessContext& c, const SeriesSpec& spec, SampleValue value, const TrendOptions& options,
                   double min_growth, FindingKind kind, Tested& seen, ProcessFindings& out) {
  seen = test_series(c, spec, series_of(c.samples, value), options, out);
  if (!seen.growing() || seen.trend.growth_total < min_growth) return nullptr;
  return &out.findings.emplace_back(trend_finding(c, spec, seen, kind, Severity::kLeak));
}

// Open fds, from the samples that could count them: another user's process without root has
// none, and is not measured rather than "no fds".
void add_fds(const ProcessContext& c, ProcessFindings& out) {
  std::vector<SeriesPoint> points;
  for (const ProcessSample& s : c.samples) {
    if (s.fds) points.push_back({seconds_of(s.t_ms), static_cast<double>(*s.fds)});
  }
  if (points.empty()) return;  // out.seen.fds stays unmeasured
  out.seen.fds = test_series(c, kFds, points, c.options.fds, out);
  if (!out.seen.fds.growing() || out.seen.fds.trend.growth_total < c.options.fds_min_growth) return;
  out.findings.push_back(trend_finding(c, kFds, out.seen.fds, FindingKind::kFdGrowth, Severity::kLeak));
}

// Every thread has a stack, reserved in VSZ and resident as far as it was touched: say what the
// leaked threads cost in address space, which is what runs out first on 32-bit and in containers.
void add_threads(const ProcessContext& c, ProcessFindings& out) {
  Finding* f = add_count(
      c, kThreads, [](const ProcessSample& s) { return static_cast<double>(s.threads); }, c.options.threads,
      c.options.threads_min_growth, FindingKind::kThreadGrowth, out.seen.threads, out);
  // Both from the same two samples: the trend's levels are medians over a different window.
  double threads_added = static_cast<double>(c.samples.back().threads) - static_cast<double>(c.samples.front().threads);
  auto vsz_added = static_cast<double>(c.samples.back().vsz_bytes) - static_cast<double>(c.samples.front().vsz_bytes);
  if (!f || threads_added < 1 || vsz_added <= 0) return;
  f->evidence += fmt::format("; VSZ rose {} with them, about {} per thread (their stacks)",
                             level_text(vsz_added, Unit::kBytes), level_text(vsz_added / threads_added, Unit::kBytes));
}

struct Peaks {
  uint64_t rss_min_bytes = UINT64_MAX;
  uint64_t rss_max_bytes = 0;
  uint64_t vsz_max_bytes = 0;
};

Peaks peaks_of(const std::vector<ProcessSample>& samples) {
  Peaks p;
  for (const ProcessSample& s : samples) {
    p.rss_min_bytes = std::min(p.rss_min_bytes, s.rss_bytes);
    p.rss_max_bytes = std::max(p.rss_max_bytes, s.rss_bytes);
    p.vsz_max_bytes = std::max(p.vsz_max_bytes, s.vsz_bytes);
  }
  if (samples.empty()) p.rss_min_bytes = 0;
  return p;
}

// A finding that states a measurement of a byte series between two levels, not an inferred trend.
Finding measured_finding(const ProcessContext& c, FindingKind kind, Severity severity, Series series,
                         double start_level, double end_level) {
  Finding f;
  f.kind = kind;
  f.severity = severity;
  f.pid = c.pid;
  f.series = series;
  f.unit = Unit::kBytes;
  f.confidence = 1;  // a measurement, not an inference
  f.start_level = start_level;
  f.end_level = end_level;
  return f;
}

// Reserved address space is not memory use: say so, with both numbers, so nobody chases VSZ.
void add_reservation(const ProcessContext& c, ProcessFindings& out) {
  Peaks p = peaks_of(c.samples);
  auto vsz = static_cast<double>(p.vsz_max_bytes);
  if (p.vsz_max_bytes < c.options.reservation_min_vsz_bytes) return;
  if (vsz < c.options.reservation_vsz_to_rss * static_cast<double>(p.rss_max_bytes)) return;
  Finding f = measured_finding(c, FindingKind::kReservationOnly, Severity::kInfo, Series::kVsz,
                               static_cast<double>(c.samples.front().vsz_bytes),
                               static_cast<double>(c.samples.back().vsz_bytes));
  f.evidence = fmt::format(
      "peak VSZ {} is {:.0f}x peak RSS {}: address space reserved but never touched (allocators, runtimes, "
      "GPU drivers reserve up front); it costs no memory and is harmless",
      model::format_bytes(p.vsz_max_bytes), vsz / static_cast<double>(std::max<uint64_t>(p.rss_max_bytes, 1)),
      model::format_bytes(p.rss_max_bytes));
  out.findings.push_back(std::move(f));
}

double median_of(std::vector<double> values) {
  if (values.empty()) return 0;
  std::nth_element(values.begin(), values.begin() + values.size() / 2, values.end());
  return values[values.size() / 2];
}

// Median of the last 10% of a series' values (at least one point): the level it ended at.
template <typename Value>
double final_level(size_t count, Value value) {
  std::vector<double> tail;
  for (size_t i = count - std::max<size_t>(1, count / 10); i < count; ++i) tail.push_back(value(i));
  return median_of(std::move(tail));
}

// Freed memory the allocator keeps is resident but not live: RSS far above the live heap, and
// not a leak. Judged on the levels at the end of the run, where a leak would also show.
void add_retention(const ProcessContext& c, ProcessFindings& out) {
  std::vector<SeriesPoint> heap = heap_series(c.samples, c.traced);
  if (heap.empty() || c.samples.empty()) return;
  static const std::vector<SeriesPoint> kNoMappings;
  const auto& mapped = c.traced ? c.traced->mapped_live_bytes : kNoMappings;
  double anon =
      final_level(c.samples.size(), [&](size_t i) { return static_cast<double>(c.samples[i].rss_anon_bytes); });
  double heap_live = final_level(heap.size(), [&](size_t i) { return heap[i].value; });
  double mapped_live = mapped.empty() ? 0 : final_level(mapped.size(), [&](size_t i) { return mapped[i].value; });
  double live = heap_live + mapped_live;
  double retained = anon - live;
  double heap_peak =
      std::max(c.traced ? c.traced->heap_peak_bytes : 0.0,
               std::max_element(heap.begin(), heap.end(), [](auto& a, auto& b) { return a.value < b.value; })->value);
  out.seen.retention = RetentionObservation{anon, heap_live, heap_peak, mapped_live};
  // Retention is RSS kept while the heap is flat or falling; a growing heap is growth (its own finding).
  if (out.seen.heap.growing()) return;
  if (retained < static_cast<double>(c.options.retention_min_bytes) || anon < c.options.retention_factor * live) return;
  // Only memory that was freed can be retained: the heap must have been bigger earlier by most of
  // the excess (a large .bss or other anon memory outside malloc is not the allocator's).
  if (heap_peak - heap_live < c.options.retention_freed_share * retained) return;
  Finding f = measured_finding(c, FindingKind::kAllocatorRetention, Severity::kWarning, Series::kRssAnon, live, anon);
  f.evidence = fmt::format(
      "anon RSS {} while the live heap is {} (peak {}) and direct mappings {}: {} was freed but is kept by the "
      "allocator (fragmentation), not a leak; malloc_trim(0) after big frees, MALLOC_ARENA_MAX=2, or "
      "jemalloc/tcmalloc can return it",
      model::format_bytes(static_cast<uint64_t>(anon)), model::format_bytes(static_cast<uint64_t>(heap_live)),
      model::format_bytes(static_cast<uint64_t>(heap_peak)), model::format_bytes(static_cast<uint64_t>(mapped_live)),
      model::format_bytes(static_cast<uint64_t>(retained)));
  out.findings.push_back(std::move(f));
}

Finding no_growth(const ProcessContext& c, const std::vector<std::string>& not_judged) {
  Peaks p = peaks_of(c.samples);
  Finding f;
  f.kind = FindingKind::kNoGrowth;
  f.severity = Severity::kInfo;
  f.pid = c.pid;
  f.series = Series::kRss;
  f.unit = Unit::kBytes;
  f.confidence = 1 - c.options.bytes.alpha;
  f.start_level = static_cast<double>(c.samples.front().rss_bytes);
  f.end_level = static_cast<double>(c.samples.back().rss_bytes);
  double span_s = seconds_of(c.samples.back().t_ms - c.samples.front().t_ms);
  std::string range = p.rss_min_bytes == p.rss_max_bytes
                          ? fmt::format("at {}", model::format_bytes(p.rss_max_bytes))
                          : fmt::format("between {} and {}", model::format_bytes(p.rss_min_bytes),
                                        model::format_bytes(p.rss_max_bytes));
  f.evidence = fmt::format("RSS stayed {} over {}; no series grew", range, span_text(span_s));
  if (!not_judged.empty()) f.evidence += " (not judged: " + model::joined(not_judged, "; ") + ")";
  return f;
}

// Every process's findings and what they were judged on.
ProcessFindings process_findings(const ProcessContext& c) {
  ProcessFindings out;
  out.seen.pid = c.pid;
  Peaks peaks = peaks_of(c.samples);
  out.seen.rss_max_bytes = peaks.rss_max_bytes;
  out.seen.vsz_max_bytes = peaks.vsz_max_bytes;
  out.seen.limit = c.limit;
  add_heap_and_anon(c, out);
  add_shmem(c, out);
  add_gpu(c, out);
  add_file(c, out);
  add_fds(c, out);
  add_threads(c, out);
  bool grew = !out.findings.empty();  // every finding so far is a growth finding
  add_reservation(c, out);
  add_retention(c, out);
  if (!grew) out.findings.push_back(no_growth(c, out.not_judged));
  return out;
}

// ---- the whole tree ----------------------------------------------------------------------------

// See RecordingData::root_pid.
const ProcessRecord* root_of(const RecordingData& data) {
  const ProcessRecord* root = nullptr;
  for (const ProcessRecord& p : data.processes) {
    if (data.root_pid && p.pid == *data.root_pid) return &p;
    if (!root || std::pair(p.first_seen_ms, p.pid) < std::pair(root->first_seen_ms, root->pid)) root = &p;
  }
  return root;
}

// What the per-process pass saw of the samples as a whole: processes are read one at a time.
struct SampleSpan {
  int64_t last_t_ms = 0;  // the latest sample of any process
  double longest_s = 0;   // the longest span of one process's samples
};

// Latest time anything was recorded, in ms since the recording started.
int64_t last_t_ms(const RecordingData& data, const SampleSpan& span) {
  int64_t last = span.last_t_ms;
  if (!data.system_samples.empty()) last = std::max(last, data.system_samples.back().t_ms);
  for (const ProcessRecord& p : data.processes) last = std::max(last, p.exited_ms.value_or(p.first_seen_ms));
  return last;
}

Finding too_short(double longest_s, pid_t root_pid, const TrendOptions& o) {
  Finding f;
  f.kind = FindingKind::kNoGrowth;
  f.severity = Severity::kInfo;
  f.pid = root_pid;
  f.series = Series::kRss;
  f.unit = Unit::kBytes;
  f.evidence = fmt::format(
      "the run was too short to judge: no process was sampled long enough (longest {:.1f} s); a verdict needs "
      "{:.1f} s of samples per process: a {:.1f} s warm-up, then at least {:.1f} s with {} samples",
      longest_s, o.warmup_s + o.min_duration_s, o.warmup_s, o.min_duration_s, o.min_points);
  return f;
}

int severity_rank(const Finding& f) {
  if (f.severity == Severity::kLeak) return 0;
  if (f.severity == Severity::kWarning) return 1;
  return 2;
}

// Leaks first, byte leaks fastest first, then count leaks fastest first; then warnings, then info,
// each in process order.
void order_findings(std::vector<Finding>& findings) {
  std::stable_sort(findings.begin(), findings.end(), [](const Finding& a, const Finding& b) {
    if (severity_rank(a) != severity_rank(b)) return severity_rank(a) < severity_rank(b);
    if (severity_rank(a) != 0) return false;
    if (a.is_bytes() != b.is_bytes()) return a.is_bytes();
    return a.rate_per_s > b.rate_per_s;
  });
}

model::ProcessSummary summary_of(const ProcessRecord& p, const std::vector<ProcessSample>& samples) {
  model::ProcessSummary s;
  s.pid = p.pid;
  s.ppid = p.ppid;
  s.command = model::joined(p.command, " ");
  s.exit_code = p.exit_code;
  s.exit_signal = p.exit_signal;
  s.first_seen_s = seconds_of(p.first_seen_ms);
  if (p.exited_ms) s.exited_s = seconds_of(*p.exited_ms);
  s.still_running = !p.exited_ms && p.pid > 0;
  for (const ProcessSample& x : samples) {
    s.peak_rss_bytes = std::max(s.peak_rss_bytes, x.rss_bytes);
    s.peak_vsz_bytes = std::max(s.peak_vsz_bytes, x.vsz_bytes);
    if (x.pss_bytes) s.peak_pss_bytes = std::max(s.peak_pss_bytes.value_or(0), *x.pss_bytes);
    if (x.heap_live_bytes) s.peak_heap_live_bytes = std::max(s.peak_heap_live_bytes.value_or(0), *x.heap_live_bytes);
  }
  if (!samples.empty()) s.final_rss_bytes = samples.back().rss_bytes;
  return s;
}

model::Target target_of(const RecordingData& data, const ProcessRecord* root, const SampleSpan& span) {
  model::Target t;
  t.command = data.meta.command;
  t.duration_s = seconds_of(last_t_ms(data, span));
  if (!root) return t;
  if (t.command.empty()) t.command = root->command;
  t.pid = root->pid;
  t.exit_code = root->exit_code;
  t.exit_signal = root->exit_signal;
  return t;
}

// The root's hypotheses first, then those of every other process where something was found: a
// thousand bounded workers need no table each (the root's child_growth speaks for them).
void add_hypotheses(Verdict& verdict, const std::vector<ProcessObservations>& observed, const TreeObservations& tree,
                    const DiagnoseOptions& options) {
  auto found_something = [&](pid_t pid) {
    return std::any_of(verdict.findings.begin(), verdict.findings.end(),
                       [&](const Finding& f) { return f.pid == pid && f.kind != FindingKind::kNoGrowth; });
  };
  for (int pass = 0; pass < 2; ++pass) {
    for (const ProcessObservations& seen : observed) {
      bool is_root = seen.pid == tree.root_pid;
      if (pass == 0 ? !is_root : is_root || !found_something(seen.pid)) continue;
      std::vector<model::Hypothesis> table = process_hypotheses(seen, tree, verdict.findings, options);
      verdict.hypotheses.insert(verdict.hypotheses.end(), table.begin(), table.end());
    }
  }
  // A root that exited early (a launcher) has no table of its own; where its children lived long
  // enough, whether they hold the growth is still the question.
  bool root_judged = std::find(tree.judged.begin(), tree.judged.end(), tree.root_pid) != tree.judged.end();
  if (!root_judged && !tree.judged.empty()) {
    verdict.hypotheses.insert(verdict.hypotheses.begin(), child_growth_hypothesis(tree, verdict.findings));
  }
}

}  // namespace

TrendOptions DiagnoseOptions::bytes_trend_options() {
  TrendOptions o;
  o.min_growth_abs_per_s = 64.0 * 1024;
  o.min_growth_rel = 0.10;
  o.unit = "B";
  return o;
}

TrendOptions DiagnoseOptions::count_trend_options(double min_growth_abs_per_s) {
  TrendOptions o;
  o.min_growth_abs_per_s = min_growth_abs_per_s;
  o.min_growth_rel = 0.10;
  return o;
}

Verdict diagnose(const RecordingData& data, const DiagnoseOptions& options) {
  Verdict verdict;
  const ProcessRecord* root = root_of(data);
  verdict.target.pid = root ? root->pid : 0;
  std::optional<MemoryLimit> limit = memory_limit(data);
  TreeObservations tree{verdict.target.pid, {}, data.processes.size()};
  std::vector<ProcessObservations> observed;
  SampleSpan span;
  std::vector<ProcessSample> loaded;  // one process's samples at a time (RecordingData::load_samples)
  for (const ProcessRecord& p : data.processes) {
    const std::vector<ProcessSample>& samples = data.samples_of(p.pid, loaded);
    if (!samples.empty()) {
      span.last_t_ms = std::max(span.last_t_ms, samples.back().t_ms);
      span.longest_s = std::max(span.longest_s, seconds_of(samples.back().t_ms - samples.front().t_ms));
    }
    verdict.processes.push_back(summary_of(p, samples));
    if (!long_enough(samples, options.bytes)) continue;  // too short-lived to judge: no finding
    tree.judged.push_back(p.pid);
    auto traced = data.traced.find(p.pid);
    ProcessFindings found = process_findings(
        {p.pid, samples, options, limit, traced == data.traced.end() ? nullptr : &traced->second, &p.gpu_devices});
    verdict.findings.insert(verdict.findings.end(), found.findings.begin(), found.findings.end());
    observed.push_back(std::move(found.seen));
  }
  verdict.target = target_of(data, root, span);
  if (tree.judged.empty()) {
    verdict.findings.push_back(too_short(span.longest_s, verdict.target.pid, options.bytes));
    verdict.hypotheses = unjudged_hypotheses(verdict.target.pid, verdict.findings.back().evidence);
  }
  order_findings(verdict.findings);
  add_hypotheses(verdict, observed, tree, options);
  return verdict;
}

namespace {

// A meta value written with put_meta(key, integer); nullopt when absent or not a whole number.
template <typename Integer>
std::optional<Integer> integer_meta(const store::RecordingReader& recording, const char* key) {
  std::optional<std::string> text = recording.meta_value(key);
  if (!text) return std::nullopt;
  Integer value = 0;
  auto [end, error] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (error != std::errc() || end != text->data() + text->size()) return std::nullopt;
  return value;
}

}  // namespace

const std::vector<model::ProcessSample>& RecordingData::samples_of(pid_t pid,
                                                                   std::vector<model::ProcessSample>& scratch) const {
  auto it = samples.find(pid);
  if (it != samples.end()) return it->second;
  scratch.clear();
  if (load_samples) scratch = load_samples(pid);
  return scratch;
}

RecordingData open_recording(std::shared_ptr<const store::RecordingReader> recording) {
  RecordingData data;
  data.meta = recording->meta();
  data.processes = recording->processes();
  data.system_samples = recording->system_samples();
  if (auto pid = integer_meta<pid_t>(*recording, store::meta_key::kRootPid)) data.root_pid = *pid;
  data.monotonic_origin_ns = integer_meta<int64_t>(*recording, store::meta_key::kMonotonicOriginNs);
  data.load_samples = [recording = std::move(recording)](pid_t pid) { return recording->samples(pid); };
  return data;
}

RecordingData load_recording(const store::RecordingReader& recording) {
  RecordingData data;
  data.meta = recording.meta();
  data.processes = recording.processes();
  for (const ProcessRecord& p : data.processes) data.samples[p.pid] = recording.samples(p.pid);
  data.system_samples = recording.system_samples();
  if (auto pid = integer_meta<pid_t>(recording, store::meta_key::kRootPid)) data.root_pid = *pid;
  data.monotonic_origin_ns = integer_meta<int64_t>(recording, store::meta_key::kMonotonicOriginNs);
  return data;
}

Verdict diagnose(const store::RecordingReader& recording, const DiagnoseOptions& options) {
  return diagnose(load_recording(recording), options);
}

}  // namespace memdx::analyze
