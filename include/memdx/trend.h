// The trend test memdx judges memory with, on a caller's own series: does it grow without bound,
// shrink, or stay bounded? Pure computation on plain vectors: no I/O, no state, safe to call from
// any thread. The method (warm-up, Theil-Sen slope, Mann-Kendall with autocorrelation correction,
// sawtooth envelope, the levelled-off rule) is described in DESIGN.md and in memdx's analyze/trend.h.
//
//   std::vector<memdx::SeriesPoint> series = ...;  // {seconds, bytes}
//   memdx::TrendOptions options;
//   options.min_growth_abs_per_s = 64 * 1024;       // what counts as growth, in value units per s
//   memdx::TrendResult r = memdx::test_trend(series, options);
//   if (r.verdict == memdx::TrendVerdict::kGrowing) ... r.slope_per_s, r.confidence ...
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "memdx/export.h"

namespace memdx {

struct SeriesPoint {
  double t_s;    // time in seconds (any origin), non-decreasing along a series
  double value;  // value in the series' own unit (bytes, count)
};

struct TrendOptions {
  double warmup_s = 2.0;            // skip points before first.t_s + warmup_s (start-up allocation)
  double min_duration_s = 4.0;      // below this (after warm-up) no verdict: kInsufficient
  size_t min_points = 12;           // fewer points after warm-up: kInsufficient
  double alpha = 0.01;              // significance level of the two-sided Mann-Kendall test
  double min_growth_abs_per_s = 0;  // floor on |slope| in value units per second (64 KiB/s for bytes, 0.2/s for fds)
  double min_growth_rel = 0.10;     // |growth_total| must reach this fraction of start_level
  bool use_envelope = true;         // judge sawtooth / GC / batch patterns on their minima
  bool correct_autocorrelation = true;  // effective-sample-size correction of Mann-Kendall (see above)
  std::string unit;                     // only for `reason`: "B" prints "2.1 MB/s", "" prints "2.1 M/s"
};

enum class TrendVerdict { kInsufficient, kFlat, kGrowing, kShrinking };

MEMDX_API const char* to_string(TrendVerdict verdict);  // "insufficient", "flat", "growing", "shrinking"

struct TrendResult {
  TrendVerdict verdict = TrendVerdict::kInsufficient;
  double slope_per_s = 0;       // Theil-Sen slope of the series actually tested (envelope or raw)
  double slope_low_per_s = 0;   // ~95% confidence interval of that slope (Sen 1968), from the
  double slope_high_per_s = 0;  // Mann-Kendall variance (autocorrelation-corrected when enabled)
  double p_value = 1;           // two-sided Mann-Kendall p, autocorrelation-corrected when enabled
  double confidence = 0;        // 1 - p_value, clamped to [0, 1]
  double start_level = 0;       // median of the first 10% of the tested series (value units)
  double end_level = 0;         // median of the last 10% of the tested series (value units)
  double growth_total = 0;      // end_level - start_level (value units)
  bool used_envelope = false;   // the tested series is the lower envelope of a sawtooth
  size_t points_used = 0;       // points in the tested series (after warm-up, envelope, binning)
  // Why a series that moved is flat, for code (the reason says it for people): every value the
  // same; a change that levelled off (its last half no longer moves); one step, flat around it.
  bool constant = false;
  bool levelled_off = false;
  bool one_step = false;
  std::string reason;  // one short sentence on why this verdict
};

// The verdict on `series` (sorted by time, or it is sorted here; non-finite points are dropped).
MEMDX_API TrendResult test_trend(const std::vector<SeriesPoint>& series, const TrendOptions& options = {});

}  // namespace memdx
