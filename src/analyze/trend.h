// Robust trend test of one memory series (RSS, anon, live heap bytes, fd count...): does it grow
// without bound, shrink, or stay bounded? Pure computation on plain vectors: no I/O, no state,
// safe to call from any thread.
//
// The method, in the order test_trend applies it:
//   1. drop points before first.t_s + warmup_s (start-up allocation is not a trend);
//   2. refuse to judge (kInsufficient) a window shorter than min_duration_s or min_points;
//   3. a sawtooth (GC, arenas, batches) is judged on its lower envelope, the minimum of each cycle,
//      because the peaks say how much garbage was pending, not how much is retained;
//   4. above kMaxTestPoints points the series is reduced to medians of equal time bins, which keeps
//      the O(n^2) pairwise statistics fast on long recordings;
//   5. Theil-Sen slope (median of pairwise slopes, robust to 29% outliers) with Sen's confidence
//      interval, and the Mann-Kendall test with its variance inflated for autocorrelation (the
//      effective sample size n* of Hamed & Rao 1998, with the AR(1) autocorrelation model and the
//      bias-corrected lag-1 estimate of Yue & Wang 2004, from the ranks of the residuals around the
//      trend: the Theil-Sen line, or lines per quarter / a running median when those fit far better,
//      so that curved or stepped growth is not mistaken for autocorrelation);
//   6. a verdict needs significance AND a slope above an absolute floor AND growth large relative to
//      the starting level AND growth that persists into the last half of the window (a cache filled
//      once and then flat is bounded, not a leak): when even the upper end of the last half's ~95%
//      slope interval is under a quarter of the whole window's slope, the verdict is kFlat and the
//      reason says the series levelled off (the numbers still describe the whole window).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "memdx/trend.h"

namespace memdx::analyze {

// The test's value types and test_trend() are public (memdx/trend.h).
using memdx::SeriesPoint;
using memdx::test_trend;
using memdx::to_string;
using memdx::TrendOptions;
using memdx::TrendResult;
using memdx::TrendVerdict;

// Series longer than this are reduced to this many time-bin medians before the pairwise statistics.
// 600 medians keep a day-long recording of a thousand processes analysable in seconds (the
// pairwise statistics are quadratic) and still resolve a trend far beyond what alpha needs.
inline constexpr size_t kMaxTestPoints = 600;

// Median of the slopes of all pairs with distinct times, in value units per second; 0 with fewer
// than two distinct times. O(n^2) time and memory: callers with long series bin them first.
double theil_sen_slope(const std::vector<SeriesPoint>& points);

// Two-sided Mann-Kendall p-value (normal approximation with tie correction; points in time order).
// With correct_autocorrelation the variance of S is multiplied by n/n* (Hamed & Rao 1998), >= 1,
// estimated from the lag-1 autocorrelation of the ranks of the Theil-Sen-detrended series under an
// AR(1) model (Yue & Wang 2004); O(n^2) like the test itself.
// 1 with fewer than 3 points or all values tied.
double mann_kendall_p(const std::vector<SeriesPoint>& points, bool correct_autocorrelation);

// The lower envelope: one local minimum per window, in time order. When the series shows at least
// two big falls (a sawtooth, see trend.cpp) each window is one cycle, from the bottom of a fall to
// the start of the next, so each point is one cycle's trough; the part before the first fall is a
// cycle cut by the window start and is left out. Otherwise the windows are max(3, n/10) consecutive
// points. A monotone series keeps its slope (each window's minimum is its first or last point).
std::vector<SeriesPoint> lower_envelope(const std::vector<SeriesPoint>& points);

// Seconds until `limit_value` is reached growing at trend.slope_per_s from `current_value`;
// 0 when already at or past it; nullopt unless trend.verdict is kGrowing with a positive slope.
std::optional<double> time_to_limit_s(const TrendResult& trend, double current_value, double limit_value);

}  // namespace memdx::analyze
