// The checks behind memdx/testing.h's GoogleTest assertions, without GoogleTest: does a piece of
// code, run again and again, keep memory it should have given back (check_bounded), and how much
// memory does it need at most while it runs (check_peak)?
//
//   memdx::testing::BoundedResult r = memdx::testing::check_bounded([&] { cache.put(next_key(), row); });
//   if (r.growing) std::fputs(memdx::testing::describe(r).c_str(), stderr);
//
// What "memory" is here (HeapSource): the live heap, i.e. the bytes malloc has handed out and not
// taken back, read from the allocator after each run of the body: glibc's mallinfo2() (in-use
// chunks plus mmapped chunks) when glibc's malloc serves the program; the sanitizer's allocator
// statistics under AddressSanitizer and its kin; the process's resident anonymous memory
// (RssAnon) under any other allocator (jemalloc, tcmalloc), whose heap memdx cannot see.
//
// Which code holds the growth: a test program that also links the recorder (CMake target
// memdx::testing, libmemdx_testing_heap.so) allocates through it; check_bounded then records
// every allocation of every thread while the body runs (the recorder is idle otherwise), and a
// growing result names the call sites whose live bytes grew, symbolized in the process (function,
// file:line; file:line needs the test built with -g). Without the recorder, or under a sanitizer,
// the result has the numbers only and sites_status says why.
//
// Thread-safety: one check at a time per process (the recorder and the allocator's figures are
// process-wide: other threads' allocations while a check runs are counted too). Errors: throws
// memdx::Error (kInvalidArgument) for options it cannot take; exceptions from the body propagate
// (the recorder is disarmed first).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "memdx/error.h"
#include "memdx/export.h"
#include "memdx/trend.h"

namespace memdx::testing {

enum class HeapSource {
  kGlibcMallinfo,       // glibc's mallinfo2(): uordblks + hblkhd
  kSanitizerAllocator,  // __sanitizer_get_current_allocated_bytes()
  kRssAnon,             // RssAnon of /proc/self/status (resident anonymous memory)
};
MEMDX_API const char* to_string(HeapSource source);  // "glibc heap (mallinfo2)", ...

// The knobs of check_bounded. The statistics: the body runs warmup_iterations times unmeasured
// (caches fill, pools grow to their working size, lazy initialisation happens), then the live
// heap is read once before and after each of `iterations` more runs. That series goes through
// memdx's trend test (memdx/trend.h) with the iteration number as time: Theil-Sen slope (the
// median of all pairwise slopes, robust to outliers), Mann-Kendall significance at `alpha` with
// its variance corrected for autocorrelation, sawtooth series judged on their minima, and growth
// that levels off in the last half, or happens in one step, judged bounded. The body's memory is
// unbounded (growing) when all of these hold: the trend is significant, the slope is above
// tolerance_bytes_per_iteration, the growth over the measured iterations is at least
// tolerance_relative of the live heap before them, and it persists into the last half.
struct BoundedOptions {
  int warmup_iterations = 3;                      // >= 0
  int iterations = 20;                            // >= 8: fewer points cannot be significant at alpha = 0.01
  uint64_t tolerance_bytes_per_iteration = 1024;  // slopes at or below this are bounded
  // Growth over the measured iterations below this fraction of the live heap before them is
  // bounded: in a process that holds hundreds of MiB, a few KiB is the allocator's bookkeeping.
  double tolerance_relative = 0.01;
  double alpha = 0.01;  // significance level of the two-sided Mann-Kendall test
  // Record allocations (when the recorder is linked) so that growth can be attributed to code.
  bool attribute_sites = true;
  size_t max_sites = 5;  // call sites kept in BoundedResult::sites, most growth first
};

// One frame of source code; an inlined function is a frame of its own.
struct CodeFrame {
  std::string function;  // demangled; "" when the module has no symbol there
  std::string file;      // "" without debug information
  uint32_t line = 0;     // 0 without debug information
  std::string module;    // the ELF file the code is in
};

// Code that holds growth: the first frame of the program's own code (not the C/C++ runtime, not
// operator new or an inlined std:: template) of the stacks whose live bytes grew.
struct GrowthSite {
  CodeFrame site;
  std::vector<CodeFrame> callers;  // the next frames of the program's own code, outwards (up to 3)
  int64_t growth_bytes = 0;        // live bytes the site gained over the measured iterations
  int64_t growth_blocks = 0;       // live blocks it gained
};

enum class SitesStatus {
  kNamed,           // sites holds the call sites (possibly none: growth outside malloc)
  kNotGrowing,      // the memory was bounded: nothing to name
  kNotRequested,    // attribute_sites was false
  kNoRecorder,      // the program does not link memdx::testing (libmemdx_testing_heap.so)
  kOtherAllocator,  // malloc is not glibc's (a sanitizer, jemalloc): the recorder cannot see it
  kRecorderFailed,  // the recorder could not map its tables
};

struct BoundedResult {
  bool growing = false;  // the verdict: the body keeps memory; the assertion fails
  HeapSource source = HeapSource::kGlibcMallinfo;
  int iterations = 0;
  uint64_t before_bytes = 0;                  // the live heap after warm-up, before the measured iterations
  std::vector<uint64_t> series_bytes;         // the live heap after each measured iteration
  double slope_bytes_per_iteration = 0;       // Theil-Sen
  double slope_low_bytes_per_iteration = 0;   // its ~95% confidence interval
  double slope_high_bytes_per_iteration = 0;  //
  double growth_bytes = 0;                    // slope times iterations: the growth over the measured run
  double p_value = 1;                         // Mann-Kendall, two-sided
  // The trend test's own result (t_s is the iteration number, so its "per s" is per iteration).
  TrendResult trend;
  SitesStatus sites_status = SitesStatus::kNotGrowing;
  std::vector<GrowthSite> sites;        // most growth first
  uint64_t unrecorded_allocations = 0;  // the recorder's tables were full: the sites may miss some
};

// Runs `body` warmup_iterations + iterations times on the calling thread and judges whether the
// memory it keeps grows (see BoundedOptions).
MEMDX_API BoundedResult check_bounded(const std::function<void()>& body, const BoundedOptions& options = {});

enum class PeakSource {
  kRecorder,      // the recorder's count of bytes allocated minus freed, exact at each call
  kRssHighWater,  // VmHWM of /proc/self/status, reset before the body (/proc/self/clear_refs)
};
MEMDX_API const char* to_string(PeakSource source);

struct PeakResult {
  PeakSource source = PeakSource::kRecorder;
  // The highest memory reached while the body ran, above the level before it: with the recorder,
  // bytes requested from malloc (and not yet freed) beyond those live before the body; with the
  // RSS high-water, resident bytes beyond the RSS before (only pages the body touched count).
  uint64_t peak_above_before_bytes = 0;
  uint64_t before_bytes = 0;  // the recorder: 0 (its count starts at the body); RSS: VmRSS before
};

// Runs `body` once and measures its peak. Throws memdx::Error (kPermissionDenied) when neither
// the recorder is linked nor /proc/self/clear_refs can reset the high-water mark.
MEMDX_API PeakResult check_peak(const std::function<void()>& body);

// The failure message: growth per iteration and in all, the series, and the code that holds it
// (or why it cannot be named, and how to get it). Several lines, ending with a newline.
MEMDX_API std::string describe(const BoundedResult& result);
// "peak 64.0 MiB above the level before the body (RSS high-water), limit 1.00 MiB"-like text.
MEMDX_API std::string describe(const PeakResult& result, uint64_t limit_bytes);

}  // namespace memdx::testing
