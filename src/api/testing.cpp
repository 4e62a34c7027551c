#include <dlfcn.h>
#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <string>

#include "analyze/wording.h"
#include "api/errors.h"
#include "api/testing_sites.h"
#include "memdx/error.h"
#include "memdx/process_memory.h"
#include "memdx/testing_checks.h"
#include "proc/process_files.h"
#include "proc/procfs.h"
#include "testing/heap_recorder.h"

namespace memdx::testing {
namespace {

// Who serves malloc in this process: the first definition of "malloc" the loader finds.
enum class Allocator { kGlibc, kRecorder, kSanitizer, kOther };

using SizeGetter = size_t (*)();
using RecorderGetter = const HeapRecorder* (*)();

std::string basename_of(const char* path) {
  std::string name = path ? path : "";
  size_t slash = name.rfind('/');
  return slash == std::string::npos ? name : name.substr(slash + 1);
}

Allocator current_allocator() {
  if (dlsym(RTLD_DEFAULT, "__sanitizer_get_current_allocated_bytes")) return Allocator::kSanitizer;
  Dl_info info{};
  if (dladdr(dlsym(RTLD_DEFAULT, "malloc"), &info) == 0) return Allocator::kOther;
  std::string module = basename_of(info.dli_fname);
  if (module.rfind("libc.so", 0) == 0) return Allocator::kGlibc;
  if (module.rfind("libmemdx_testing_heap.so", 0) == 0) return Allocator::kRecorder;
  return Allocator::kOther;
}

HeapSource source_for(Allocator allocator) {
  switch (allocator) {
    case Allocator::kGlibc:
    case Allocator::kRecorder:  // which forwards every call to glibc
      return HeapSource::kGlibcMallinfo;
    case Allocator::kSanitizer:
      return HeapSource::kSanitizerAllocator;
    case Allocator::kOther:
      break;
  }
  return HeapSource::kRssAnon;
}

// Reads the live heap the way `source` says. Reading allocates nothing for the two allocator
// sources, so the reading does not disturb what it reads.
class HeapReader {
 public:
  explicit HeapReader(HeapSource source) : source_(source) {
    if (source == HeapSource::kSanitizerAllocator)
      sanitizer_bytes_ = reinterpret_cast<SizeGetter>(dlsym(RTLD_DEFAULT, "__sanitizer_get_current_allocated_bytes"));
  }

  uint64_t live_bytes() const {
    switch (source_) {
      case HeapSource::kGlibcMallinfo: {
        struct mallinfo2 info = mallinfo2();
        return info.uordblks + info.hblkhd;
      }
      case HeapSource::kSanitizerAllocator:
        return sanitizer_bytes_();
      case HeapSource::kRssAnon:
        break;
    }
    return read_process_memory(getpid()).rss_anon_bytes;
  }

 private:
  HeapSource source_;
  SizeGetter sanitizer_bytes_ = nullptr;
};

// The recorder, when the program links it and it serves malloc; why not otherwise.
const HeapRecorder* usable_recorder(Allocator allocator, SitesStatus& why_not) {
  auto get = reinterpret_cast<RecorderGetter>(dlsym(RTLD_DEFAULT, kHeapRecorderSymbol));
  if (!get) {
    why_not = allocator == Allocator::kGlibc ? SitesStatus::kNoRecorder : SitesStatus::kOtherAllocator;
    return nullptr;
  }
  if (allocator != Allocator::kRecorder) {
    // Loaded, but after another malloc (a sanitizer's, or dlopen'ed late): it sees nothing.
    why_not = SitesStatus::kOtherAllocator;
    return nullptr;
  }
  return get();
}

// The recorder armed for the length of a check, disarmed however the check ends (the body may throw).
class ArmedRecorder {
 public:
  explicit ArmedRecorder(const HeapRecorder* recorder) : recorder_(recorder && recorder->arm() ? recorder : nullptr) {}
  ~ArmedRecorder() { disarm(); }
  ArmedRecorder(const ArmedRecorder&) = delete;
  ArmedRecorder& operator=(const ArmedRecorder&) = delete;

  const HeapRecorder* get() const { return recorder_; }
  void disarm() {
    if (recorder_) recorder_->disarm();
  }

 private:
  const HeapRecorder* recorder_;
};

void check_options(const BoundedOptions& options) {
  if (options.warmup_iterations < 0) throw Error(ErrorKind::kInvalidArgument, "warmup_iterations must not be negative");
  if (options.iterations < 8)
    throw Error(ErrorKind::kInvalidArgument,
                "iterations must be at least 8: fewer cannot show a significant trend, got " +
                    std::to_string(options.iterations));
  if (!(options.alpha > 0 && options.alpha < 1))
    throw Error(ErrorKind::kInvalidArgument, "alpha must lie between 0 and 1");
  if (!(options.tolerance_relative >= 0)) throw Error(ErrorKind::kInvalidArgument, "tolerance_relative must be >= 0");
}

// The trend test on the series, the iteration number as its time.
void judge(BoundedResult& result, const BoundedOptions& options) {
  std::vector<SeriesPoint> points;
  points.push_back({0, static_cast<double>(result.before_bytes)});
  for (size_t i = 0; i < result.series_bytes.size(); ++i)
    points.push_back({static_cast<double>(i + 1), static_cast<double>(result.series_bytes[i])});
  TrendOptions trend;
  trend.warmup_s = 0;  // the warm-up iterations ran unmeasured
  trend.min_duration_s = 0;
  trend.min_points = 8;
  trend.alpha = options.alpha;
  trend.min_growth_abs_per_s = static_cast<double>(options.tolerance_bytes_per_iteration);
  trend.min_growth_rel = options.tolerance_relative;
  trend.unit = "B";
  result.trend = test_trend(points, trend);
  result.growing = result.trend.verdict == TrendVerdict::kGrowing;
  result.slope_bytes_per_iteration = result.trend.slope_per_s;
  result.slope_low_bytes_per_iteration = result.trend.slope_low_per_s;
  result.slope_high_bytes_per_iteration = result.trend.slope_high_per_s;
  result.growth_bytes = result.trend.slope_per_s * options.iterations;
  result.p_value = result.trend.p_value;
}

std::string bytes_text(double bytes) {
  std::string text = analyze::level_text(std::abs(bytes), Unit::kBytes);
  return bytes < 0 ? "-" + text : text;
}

std::string frame_text(const CodeFrame& frame) {
  std::string text = frame.function;
  if (!frame.file.empty()) {
    text += " at " + frame.file;
    if (frame.line > 0) text += ":" + std::to_string(frame.line);
  } else if (!frame.module.empty()) {
    text += " in " + frame.module;
  }
  return text;
}

std::string sites_text(const BoundedResult& result) {
  switch (result.sites_status) {
    case SitesStatus::kNamed:
      break;
    case SitesStatus::kNotGrowing:
      return "";
    case SitesStatus::kNotRequested:
      return "the code that holds it was not looked for (BoundedOptions::attribute_sites is false)\n";
    case SitesStatus::kNoRecorder:
      return "link memdx::testing to see which code holds it (the recorder, libmemdx_testing_heap.so)\n";
    case SitesStatus::kOtherAllocator:
      return "which code holds it cannot be seen: malloc is not glibc's here (a sanitizer or another allocator "
             "replaces it, and the recorder with it)\n";
    case SitesStatus::kRecorderFailed:
      return "which code holds it cannot be seen: the recorder could not map its tables\n";
  }
  if (result.sites.empty())
    return "no call site of malloc holds the growth: the memory grows outside the recorded heap\n";
  std::string text = "the code that holds the growth (live bytes gained over the " + std::to_string(result.iterations) +
                     " measured iterations, by call site):\n";
  for (const GrowthSite& site : result.sites) {
    text += "  " + bytes_text(static_cast<double>(site.growth_bytes)) + " in " + std::to_string(site.growth_blocks) +
            " blocks: " + frame_text(site.site) + "\n";
    for (const CodeFrame& caller : site.callers) text += "      called from " + frame_text(caller) + "\n";
  }
  if (result.unrecorded_allocations > 0)
    text += "  (the recorder's tables were full: " + std::to_string(result.unrecorded_allocations) +
            " allocations were not attributed)\n";
  return text;
}

// Why the trend test found no unbounded growth, from its flags.
const char* bounded_reason(const TrendResult& trend) {
  if (trend.constant) return "the memory did not change";
  if (trend.levelled_off) return "the memory grew, then levelled off in the last half";
  if (trend.one_step) return "the memory changed in one step and stayed level around it";
  switch (trend.verdict) {
    case TrendVerdict::kShrinking:
      return "the memory shrank";
    case TrendVerdict::kInsufficient:
      return "too few points to judge";
    case TrendVerdict::kFlat:
    case TrendVerdict::kGrowing:
      break;
  }
  return "no significant growth above the tolerances";
}

bool reset_rss_high_water() {
  // "5" resets the peak RSS (VmHWM) to the current RSS (Linux 4.0+).
  int fd = ::open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool written = ::write(fd, "5", 1) == 1;
  ::close(fd);
  return written;
}

proc::Status own_status() {
  proc::ProcFs procfs;
  auto text = procfs.read_pid_file(getpid(), "status");
  if (!text.ok()) api::throw_read_error(text.error());
  return proc::parse_status(*text);
}

}  // namespace

const char* to_string(HeapSource source) {
  switch (source) {
    case HeapSource::kGlibcMallinfo:
      return "glibc heap (mallinfo2: in-use chunks + mmapped chunks)";
    case HeapSource::kSanitizerAllocator:
      return "sanitizer allocator (bytes allocated and not freed)";
    case HeapSource::kRssAnon:
      return "resident anonymous memory (RssAnon: malloc is not glibc's)";
  }
  return "?";
}

const char* to_string(PeakSource source) {
  switch (source) {
    case PeakSource::kRecorder:
      return "bytes allocated and not yet freed, counted by the recorder";
    case PeakSource::kRssHighWater:
      return "resident memory high-water mark (VmHWM)";
  }
  return "?";
}

BoundedResult check_bounded(const std::function<void()>& body, const BoundedOptions& options) {
  check_options(options);
  BoundedResult result;
  Allocator allocator = current_allocator();
  result.source = source_for(allocator);
  result.iterations = options.iterations;
  result.series_bytes.reserve(static_cast<size_t>(options.iterations));
  SitesStatus why_no_sites = SitesStatus::kNotRequested;
  const HeapRecorder* recorder = options.attribute_sites ? usable_recorder(allocator, why_no_sites) : nullptr;
  // Allocated before the recorder is armed and before the first reading: the same bytes in
  // every reading, and no site of the check's own.
  std::vector<HeapStackGrowth> grown(size_t{1} << 14);
  HeapReader reader(result.source);

  ArmedRecorder armed(recorder);
  if (recorder && !armed.get()) why_no_sites = SitesStatus::kRecorderFailed;
  for (int i = 0; i < options.warmup_iterations; ++i) body();
  if (armed.get()) armed.get()->mark();
  result.before_bytes = reader.live_bytes();
  for (int i = 0; i < options.iterations; ++i) {
    body();
    result.series_bytes.push_back(reader.live_bytes());  // reserved: no allocation
  }
  armed.disarm();

  judge(result, options);
  if (!result.growing) {
    result.sites_status = SitesStatus::kNotGrowing;
  } else if (!armed.get()) {
    result.sites_status = why_no_sites;
  } else {
    grown.resize(armed.get()->growth(grown.data(), grown.size()));
    result.unrecorded_allocations = armed.get()->dropped();
    result.sites = api::name_growth_sites(*armed.get(), grown, options.max_sites);
    result.sites_status = SitesStatus::kNamed;
  }
  return result;
}

PeakResult check_peak(const std::function<void()>& body) {
  PeakResult result;
  SitesStatus ignored = SitesStatus::kNotRequested;
  const HeapRecorder* recorder = usable_recorder(current_allocator(), ignored);
  if (recorder) {
    ArmedRecorder armed(recorder);
    if (armed.get()) {
      result.source = PeakSource::kRecorder;
      armed.get()->mark();
      int64_t before = armed.get()->net_bytes();
      body();
      int64_t peak = armed.get()->peak_net_bytes();
      result.peak_above_before_bytes = peak > before ? static_cast<uint64_t>(peak - before) : 0;
      return result;
    }
  }
  result.source = PeakSource::kRssHighWater;
  if (!reset_rss_high_water())
    throw Error(ErrorKind::kPermissionDenied,
                "cannot reset the RSS high-water mark (/proc/self/clear_refs is not writable): link memdx::testing "
                "to measure the peak of the heap instead");
  result.before_bytes = own_status().vm_rss_bytes.value_or(0);
  body();
  uint64_t high_water = own_status().vm_hwm_bytes.value_or(0);
  result.peak_above_before_bytes = high_water > result.before_bytes ? high_water - result.before_bytes : 0;
  return result;
}

std::string describe(const BoundedResult& result) {
  char p_text[32];
  std::snprintf(p_text, sizeof p_text, "%.2g", result.p_value);
  std::string text =
      result.growing ? "grew " + bytes_text(result.slope_bytes_per_iteration) + " per iteration (95% interval " +
                           bytes_text(result.slope_low_bytes_per_iteration) + " to " +
                           bytes_text(result.slope_high_bytes_per_iteration) + "), " + bytes_text(result.growth_bytes) +
                           " over " + std::to_string(result.iterations) + " iterations\n"
                     : std::string("bounded: ") + bounded_reason(result.trend) + "\n";
  text += "trend test: Theil-Sen slope " + bytes_text(result.slope_bytes_per_iteration) +
          " per iteration, Mann-Kendall p = " + p_text + ", from " + bytes_text(result.trend.start_level) + " to " +
          bytes_text(result.trend.end_level) + (result.trend.used_envelope ? " (minima of a sawtooth)" : "") + "\n";
  text += std::string("measured: ") + to_string(result.source) + ", after warm-up then after each iteration, bytes:\n ";
  text += " " + std::to_string(result.before_bytes);
  for (uint64_t bytes : result.series_bytes) text += " " + std::to_string(bytes);
  text += "\n";
  return text + sites_text(result);
}

std::string describe(const PeakResult& result, uint64_t limit_bytes) {
  std::string text = "peak " + bytes_text(static_cast<double>(result.peak_above_before_bytes)) +
                     " above the level before the body (" + to_string(result.source) + "), limit " +
                     bytes_text(static_cast<double>(limit_bytes)) + "\n";
  if (result.source == PeakSource::kRssHighWater)
    text += "resident before the body: " + bytes_text(static_cast<double>(result.before_bytes)) + "\n";
  return text;
}

}  // namespace memdx::testing
