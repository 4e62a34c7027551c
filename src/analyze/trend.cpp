#include "analyze/trend.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iterator>

#include <fmt/format.h>

namespace memdx::analyze {
namespace {

constexpr double kZ975 = 1.959963984540054;  // two-sided 95% quantile of the standard normal
constexpr double kLevelFraction = 0.10;      // start/end levels: medians of the first/last 10%
constexpr double kTinyLevel = 1e-12;         // start levels at or near 0: any real growth is relative

// Sawtooth detection. A fall is a run of consecutive decreasing steps; it is "big" when it spans at
// least a quarter of the series' range AND it is steep: its mean step is at least five typical
// (median absolute) steps. The first clause ignores falls that are small next to the overall
// movement (noise on a ramp); the second ignores the slow descents of a wandering (autocorrelated)
// series, whose runs of small steps can add up to a quarter of the range, and the single large
// steps that white noise produces only once in thousands of steps. A GC or batch sawtooth rises
// slowly and falls at once by about its whole range, which is why counting big falls works better
// than counting reversals: a noisy flat series reverses on half its steps and is no sawtooth.
constexpr double kFallRangeFraction = 0.25;
constexpr double kFallStepMultiple = 5.0;
constexpr size_t kMinSawtoothFalls = 2;       // three cycles at least
constexpr size_t kMinPointsPerCycle = 3;      // more falls than this allows is noise, not cycles
constexpr double kDipRecoveryFraction = 0.5;  // regaining half a fall in one step: a dip

// Growth that persists: the last half's slope must plausibly (upper end of its ~95% interval)
// reach this fraction of the whole window's slope, or the growth is judged to have levelled off.
constexpr double kPersistFraction = 0.25;

// Detrending leaves rounding noise on a perfectly linear series; values closer than this fraction
// of the range are tied, so the noise does not pass for autocorrelation.
constexpr double kDetrendTieFraction = 1e-9;

// A lag-1 autocorrelation at 1 would mean no information at all; capping it keeps n/n* finite.
constexpr double kMaxLag1 = 0.99;

// Curved or stepped trends (see trend_lag1). One line per quarter of the window (at least 8 points
// each) must leave under a quarter of the residual variance of the single line; a running median
// over 1/6 of the window, which also follows steps, must leave under a tenth (it absorbs more of a
// genuine wander than the quarter lines, hence the stricter bar).
constexpr size_t kCurvePieces = 4;
constexpr size_t kMinPiecePoints = 8;
constexpr double kPiecesResidualFraction = 0.25;
constexpr size_t kMedianHalfWidthDivisor = 12;
constexpr double kMedianResidualFraction = 0.10;

struct Fall {
  size_t top;     // index where the fall starts
  size_t bottom;  // index of its lowest point
};

struct KendallS {
  double s;      // sum of signs over all ordered pairs
  double var_s;  // variance of S under no trend, with tie correction
};

// Median of v, reordering v. v must not be empty.
double median_in_place(std::vector<double>& v) {
  auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  double upper = *mid;
  if (v.size() % 2 == 1) return upper;
  return (*std::max_element(v.begin(), mid) + upper) / 2;
}

// The k-th smallest (0-based) of v, reordering v.
double kth_in_place(std::vector<double>& v, size_t k) {
  auto it = v.begin() + static_cast<std::ptrdiff_t>(k);
  std::nth_element(v.begin(), it, v.end());
  return *it;
}

std::vector<double> pairwise_slopes(const std::vector<SeriesPoint>& p) {
  std::vector<double> slopes;
  if (p.size() < 2) return slopes;
  slopes.reserve(p.size() * (p.size() - 1) / 2);
  for (size_t i = 0; i < p.size(); ++i) {
    for (size_t j = i + 1; j < p.size(); ++j) {
      double dt_s = p[j].t_s - p[i].t_s;
      if (dt_s != 0) slopes.push_back((p[j].value - p[i].value) / dt_s);
    }
  }
  return slopes;
}

// Sum over groups of equal values of t(t-1)(2t+5): the tie term of Var(S).
double tie_term(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  double term = 0;
  for (size_t i = 0; i < values.size();) {
    size_t j = i;
    while (j < values.size() && values[j] == values[i]) ++j;
    auto t = static_cast<double>(j - i);
    term += t * (t - 1) * (2 * t + 5);
    i = j;
  }
  return term;
}

KendallS kendall_s(const std::vector<SeriesPoint>& p) {
  int64_t s = 0;
  std::vector<double> values;
  values.reserve(p.size());
  for (size_t i = 0; i < p.size(); ++i) {
    values.push_back(p[i].value);
    for (size_t j = i + 1; j < p.size(); ++j) s += (p[j].value > p[i].value) - (p[j].value < p[i].value);
  }
  auto n = static_cast<double>(p.size());
  return {static_cast<double>(s), (n * (n - 1) * (2 * n + 5) - tie_term(std::move(values))) / 18};
}

// Ranks 1..n, ties sharing their average rank.
std::vector<double> average_ranks(const std::vector<double>& v) {
  std::vector<size_t> order(v.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  std::vector<double> ranks(v.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j < order.size() && v[order[j]] == v[order[i]]) ++j;
    double rank = static_cast<double>(i + j + 1) / 2;  // mean of ranks i+1..j
    for (size_t k = i; k < j; ++k) ranks[order[k]] = rank;
    i = j;
  }
  return ranks;
}

// Sums over the residuals of the series around a trend, pooled over stretches.
struct ResidualSums {
  double lag0 = 0;              // sum of squared centred ranks
  double lag1 = 0;              // sum of products of neighbouring centred ranks
  double squared_residual = 0;  // sum of squared deviations of the residuals from their median
};

// Adds one stretch of residuals to `sums`. Autocorrelation is measured on ranks (Hamed & Rao), so
// one outlier cannot fake or hide it; residuals closer than a tiny fraction of their range are
// tied, so the rounding noise of a perfect line is no structure.
void add_residuals(std::vector<double> residual, ResidualSums& sums) {
  auto [lo, hi] = std::minmax_element(residual.begin(), residual.end());
  double quantum = kDetrendTieFraction * std::max(*hi - *lo, kTinyLevel);
  for (double& d : residual) d = std::round(d / quantum) * quantum;
  std::vector<double> ranks = average_ranks(residual);
  double mean_rank = static_cast<double>(ranks.size() + 1) / 2;
  for (size_t i = 0; i < ranks.size(); ++i) {
    sums.lag0 += (ranks[i] - mean_rank) * (ranks[i] - mean_rank);
    if (i + 1 < ranks.size()) sums.lag1 += (ranks[i] - mean_rank) * (ranks[i + 1] - mean_rank);
  }
  std::vector<double> sorted = residual;
  double median = median_in_place(sorted);
  for (double d : residual) sums.squared_residual += (d - median) * (d - median);
}

// p[first, last) minus the line through its first point with slope `slope_per_s`.
std::vector<double> line_residuals(const std::vector<SeriesPoint>& p, size_t first, size_t last, double slope_per_s) {
  std::vector<double> residual;
  for (size_t i = first; i < last; ++i) residual.push_back(p[i].value - slope_per_s * (p[i].t_s - p[first].t_s));
  return residual;
}

// p minus its running median over half_width points each side, the window shrinking symmetrically
// near the ends so that it stays centred (an off-centre median lags behind any slope).
std::vector<double> running_median_residuals(const std::vector<SeriesPoint>& p, size_t half_width) {
  std::vector<double> residual;
  std::vector<double> window;
  for (size_t i = 0; i < p.size(); ++i) {
    size_t h = std::min({half_width, i, p.size() - 1 - i});
    window.clear();
    for (size_t j = i - h; j <= i + h; ++j) window.push_back(p[j].value);
    residual.push_back(p[i].value - median_in_place(window));
  }
  return residual;
}

// Lag-1 autocorrelation of stretches of `stretch_points` points, with the small-sample bias
// correction of Yue & Wang (2004): the plain estimate runs low by about (1 + 4 rho) / n.
double lag1_autocorrelation(const ResidualSums& sums, double stretch_points) {
  if (sums.lag0 <= 0) return 0;
  return (stretch_points * (sums.lag1 / sums.lag0) + 1) / (stretch_points - 4);
}

ResidualSums quarter_line_sums(const std::vector<SeriesPoint>& p) {
  ResidualSums sums;
  for (size_t k = 0; k < kCurvePieces; ++k) {
    size_t first = k * p.size() / kCurvePieces;
    size_t last = (k + 1) * p.size() / kCurvePieces;
    std::vector<SeriesPoint> piece(p.begin() + static_cast<std::ptrdiff_t>(first),
                                   p.begin() + static_cast<std::ptrdiff_t>(last));
    add_residuals(line_residuals(p, first, last, theil_sen_slope(piece)), sums);
  }
  return sums;
}

// Lag-1 autocorrelation of the series around its trend. The trend is the whole window's Theil-Sen
// line, unless lines per quarter or a running median follow the series much more closely (see
// the constants): then the trend is curved (growth that slows down or speeds up) or stepped (a
// cache filled at once), the residual from one line is that shape itself, and it would pass for
// autocorrelation near 1 and hide a clean change (our simulation: a rise levelling off at
// half-time, 75 noise sigmas high, was never significant). The local trends also absorb part of a
// genuine wander, so they are used only when they fit that much better; on AR(1) noise with
// phi = 0.9 (150 points) they left the false-positive rate at alpha = 0.01 unchanged, 3.75%.
double trend_lag1(const std::vector<SeriesPoint>& p, double slope_per_s) {
  size_t n = p.size();
  ResidualSums whole;
  add_residuals(line_residuals(p, 0, n, slope_per_s), whole);
  double r1 = lag1_autocorrelation(whole, static_cast<double>(n));
  if (n / kCurvePieces < kMinPiecePoints) return r1;
  ResidualSums pieces = quarter_line_sums(p);
  if (pieces.squared_residual < kPiecesResidualFraction * whole.squared_residual) {
    return lag1_autocorrelation(pieces, static_cast<double>(n) / static_cast<double>(kCurvePieces));
  }
  ResidualSums smooth;
  add_residuals(running_median_residuals(p, n / kMedianHalfWidthDivisor), smooth);
  if (smooth.squared_residual < kMedianResidualFraction * whole.squared_residual) {
    return lag1_autocorrelation(smooth, static_cast<double>(n));
  }
  return r1;
}

// n/n*, the factor by which autocorrelation inflates Var(S), in the form of Hamed & Rao (1998):
//   1 + 2 / (n(n-1)(n-2)) * sum_k (n-k)(n-k-1)(n-k-2) rho_k,
// with rho_k = r1^k, the AR(1) model of Yue & Wang (2004), rather than the empirical rank
// autocorrelation at every significant lag that Hamed & Rao sum. Sample autocorrelations of a short
// series are biased low and always sum to -1/2, so the empirical sum under-corrects badly: on AR(1)
// noise with phi = 0.9 and 150 points it still called 21% of trendless series significant at
// alpha = 0.01; the AR(1) form calls 3.6%, and 0.9% of white noise (our simulation, 1000 seeds).
// The factor is kept >= 1: negative autocorrelation would shrink the variance, and a verdict should
// never be more confident than the independent case.
double autocorrelation_ratio(const std::vector<SeriesPoint>& p, double slope_per_s) {
  size_t n = p.size();
  if (n < 5) return 1;
  double r1 = std::clamp(trend_lag1(p, slope_per_s), 0.0, kMaxLag1);
  double sum = 0;
  double rho_k = 1;
  for (size_t k = 1; k + 2 < n && rho_k > 1e-12; ++k) {
    rho_k *= r1;
    sum += static_cast<double>((n - k) * (n - k - 1) * (n - k - 2)) * rho_k;
  }
  double nd = static_cast<double>(n);
  return std::max(1.0, 1 + 2 * sum / (nd * (nd - 1) * (nd - 2)));
}

// Two-sided p of S under the normal approximation, with the usual continuity correction.
double p_from_s(double s, double var_s) {
  if (var_s <= 0 || s == 0) return 1;
  double z = (std::abs(s) - 1) / std::sqrt(var_s);
  return std::clamp(std::erfc(z / std::sqrt(2.0)), 0.0, 1.0);
}

// Sen (1968): the slopes ranked (N - C)/2 and (N + C)/2 + 1 bound the ~95% interval of the
// median slope, C = z * sqrt(Var(S)). `slopes` may be reordered.
void sen_interval(std::vector<double>& slopes, double var_s, double& low, double& high) {
  auto n = static_cast<double>(slopes.size());
  double c = kZ975 * std::sqrt(std::max(var_s, 0.0));
  auto rank_to_index = [&](double rank) { return static_cast<size_t>(std::clamp(rank, 1.0, n)) - 1; };
  low = kth_in_place(slopes, rank_to_index(std::floor((n - c) / 2)));
  high = kth_in_place(slopes, rank_to_index(std::ceil((n + c) / 2) + 1));
}

// Median of the values of the first (or last) 10% of p, at least one point.
double level(const std::vector<SeriesPoint>& p, bool at_end) {
  auto k = std::max<size_t>(1, static_cast<size_t>(std::ceil(kLevelFraction * static_cast<double>(p.size()))));
  std::vector<double> values;
  for (size_t i = 0; i < k; ++i) values.push_back(p[at_end ? p.size() - 1 - i : i].value);
  return median_in_place(values);
}

// Two-sided p of the rise along the fitted line against a trendless but arbitrarily
// autocorrelated series with the residuals' spread. Whatever its correlation, such a series keeps
// its spread, so the difference between two of its points has a standard deviation of at most twice
// that spread. The autocorrelation correction works on ranks and cannot see that a counter rising
// 200 fds with +-2 fds of timing jitter is no wandering series: its residuals' ranks are correlated
// (the sampler's phase drifts against the program's ticks), yet the rise dwarfs any such wander.
double level_shift_p(const std::vector<SeriesPoint>& p, double slope_per_s) {
  if (p.size() < 3) return 1;
  std::vector<double> residuals;
  residuals.reserve(p.size());
  for (const SeriesPoint& point : p) residuals.push_back(point.value - slope_per_s * point.t_s);
  double center = median_in_place(residuals);
  for (double& r : residuals) r = std::abs(r - center);
  double sigma = 1.4826 * median_in_place(residuals);
  double rise = std::abs(slope_per_s) * (p.back().t_s - p.front().t_s);
  if (rise <= 0) return 1;
  if (sigma <= 0) return 0;
  return std::erfc(rise / (2 * sigma) / std::sqrt(2.0));
}

// Slope, interval, p and levels of `tested` into r. `tested` must not be empty.
void measure(const std::vector<SeriesPoint>& tested, bool correct_autocorrelation, TrendResult& r) {
  std::vector<double> slopes = pairwise_slopes(tested);
  r.slope_per_s = slopes.empty() ? 0 : median_in_place(slopes);
  KendallS ks = kendall_s(tested);
  double var_s = ks.var_s * (correct_autocorrelation ? autocorrelation_ratio(tested, r.slope_per_s) : 1.0);
  r.p_value = p_from_s(ks.s, var_s);
  // Only as a second opinion on a corrected test: the uncorrected one needs no help.
  if (correct_autocorrelation)
    r.p_value = std::min(r.p_value, std::max(p_from_s(ks.s, ks.var_s), level_shift_p(tested, r.slope_per_s)));
  r.confidence = std::clamp(1 - r.p_value, 0.0, 1.0);
  r.slope_low_per_s = r.slope_high_per_s = r.slope_per_s;
  if (!slopes.empty()) sen_interval(slopes, var_s, r.slope_low_per_s, r.slope_high_per_s);
  r.start_level = level(tested, false);
  r.end_level = level(tested, true);
  r.growth_total = r.end_level - r.start_level;
  r.points_used = tested.size();
}

std::vector<Fall> big_falls(const std::vector<SeriesPoint>& p) {
  if (p.size() < 3) return {};
  auto [lo, hi] = std::minmax_element(p.begin(), p.end(), [](auto& a, auto& b) { return a.value < b.value; });
  double range = hi->value - lo->value;
  if (range <= 0) return {};
  std::vector<double> steps;
  for (size_t i = 1; i < p.size(); ++i) steps.push_back(std::abs(p[i].value - p[i - 1].value));
  double min_fall = kFallRangeFraction * range;
  double min_step = kFallStepMultiple * median_in_place(steps);
  std::vector<Fall> falls;
  for (size_t i = 1; i < p.size(); ++i) {
    if (p[i].value >= p[i - 1].value) continue;
    size_t top = i - 1;
    while (i + 1 < p.size() && p[i + 1].value < p[i].value) ++i;
    double drop = p[top].value - p[i].value;
    // A one-sample dip that recovers at once is a reading taken mid-update (a file remapped,
    // a buffer swapped), not a reset: a sawtooth climbs back slowly from its trough.
    bool transient = i + 1 < p.size() && p[i + 1].value - p[i].value >= kDipRecoveryFraction * drop;
    if (drop >= min_fall && drop / static_cast<double>(i - top) >= min_step && !transient) falls.push_back({top, i});
  }
  return falls;
}

bool is_sawtooth(const std::vector<SeriesPoint>& p, const std::vector<Fall>& falls) {
  return falls.size() >= kMinSawtoothFalls && falls.size() * kMinPointsPerCycle <= p.size();
}

const SeriesPoint& lowest(const std::vector<SeriesPoint>& p, size_t first, size_t last_inclusive) {
  auto begin = p.begin() + static_cast<std::ptrdiff_t>(first);
  auto end = p.begin() + static_cast<std::ptrdiff_t>(last_inclusive) + 1;
  return *std::min_element(begin, end, [](auto& a, auto& b) { return a.value < b.value; });
}

// One trough per cycle: from the bottom of each fall to the top of the next (or the end).
std::vector<SeriesPoint> cycle_minima(const std::vector<SeriesPoint>& p, const std::vector<Fall>& falls) {
  std::vector<SeriesPoint> minima;
  for (size_t k = 0; k < falls.size(); ++k) {
    size_t last = k + 1 < falls.size() ? falls[k + 1].top : p.size() - 1;
    minima.push_back(lowest(p, falls[k].bottom, last));
  }
  return minima;
}

std::vector<SeriesPoint> window_minima(const std::vector<SeriesPoint>& p, size_t window_points) {
  std::vector<SeriesPoint> minima;
  for (size_t first = 0; first < p.size(); first += window_points) {
    minima.push_back(lowest(p, first, std::min(first + window_points, p.size()) - 1));
  }
  return minima;
}

// Medians of `bins` equal time bins (empty bins skipped), each placed at the middle of the times
// of its points. Keeps the pairwise statistics at O(bins^2) on long recordings; medians rather than
// means so an outlier sample does not move its bin.
std::vector<SeriesPoint> bin_medians(const std::vector<SeriesPoint>& p, size_t bins) {
  double t0_s = p.front().t_s;
  double width_s = (p.back().t_s - t0_s) / static_cast<double>(bins);
  if (!(width_s > 0)) return p;
  std::vector<SeriesPoint> binned;
  std::vector<double> values;
  for (size_t i = 0; i < p.size();) {
    auto bin = std::min(bins - 1, static_cast<size_t>((p[i].t_s - t0_s) / width_s));
    size_t j = i;
    values.clear();
    for (; j < p.size() && std::min(bins - 1, static_cast<size_t>((p[j].t_s - t0_s) / width_s)) == bin; ++j) {
      values.push_back(p[j].value);
    }
    binned.push_back({(p[i].t_s + p[j - 1].t_s) / 2, median_in_place(values)});
    i = j;
  }
  return binned;
}

// Finite points, sorted by time (stable, so equal times keep their order).
std::vector<SeriesPoint> clean(const std::vector<SeriesPoint>& series) {
  std::vector<SeriesPoint> points;
  std::copy_if(series.begin(), series.end(), std::back_inserter(points),
               [](const SeriesPoint& s) { return std::isfinite(s.t_s) && std::isfinite(s.value); });
  auto by_time = [](const SeriesPoint& a, const SeriesPoint& b) { return a.t_s < b.t_s; };
  if (!std::is_sorted(points.begin(), points.end(), by_time)) std::stable_sort(points.begin(), points.end(), by_time);
  return points;
}

std::vector<SeriesPoint> after_warmup(std::vector<SeriesPoint> points, double warmup_s) {
  if (points.empty()) return points;
  double start_s = points.front().t_s + warmup_s;
  std::erase_if(points, [&](const SeriesPoint& s) { return s.t_s < start_s; });
  return points;
}

// The smallest number of points for which a perfectly monotone series is significant at alpha: an
// envelope with fewer cycles could never show a trend, so it gets kInsufficient, not kFlat.
size_t min_points_for_significance(double alpha) {
  for (size_t n = 3; n < 100; ++n) {
    auto nd = static_cast<double>(n);
    if (p_from_s(nd * (nd - 1) / 2, nd * (nd - 1) * (2 * nd + 5) / 18) < alpha) return n;
  }
  return 100;
}

// "2.1 MB", "350 kB", "0.2": three significant digits and an SI prefix before the unit.
// Bytes in binary units, as every other size memdx prints ("2.00 MiB"); other units in SI.
std::string quantity(double value, const std::string& unit) {
  static const char* const kPrefixes[] = {"", "k", "M", "G", "T", "P"};
  static const char* const kBinaryPrefixes[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi"};
  bool binary = unit == "B";
  double step = binary ? 1024 : 1000;
  size_t prefix = 0;
  while (std::abs(value) >= step && prefix + 1 < std::size(kPrefixes)) {
    value /= step;
    ++prefix;
  }
  if (binary) {
    char number[32];
    std::snprintf(number, sizeof number, "%.3g", value);
    return std::string(number) + " " + kBinaryPrefixes[prefix] + unit;
  }
  char number[32];
  std::snprintf(number, sizeof number, "%.3g", value);
  std::string suffix = std::string(kPrefixes[prefix]) + unit;
  return suffix.empty() ? number : std::string(number) + " " + suffix;
}

std::string rate(double value_per_s, const std::string& unit) {
  return quantity(value_per_s, unit) + "/s";
}

std::string p_text(double p) {
  if (p < 0.001) return "p<0.001";
  char text[32];
  std::snprintf(text, sizeof text, "p=%.2g", p);
  return text;
}

std::string percent(double fraction) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3g%%", fraction * 100);
  return text;
}

std::string seconds(double s) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f s", s);
  return text;
}

// Why the window is too small to judge, or nullopt.
std::optional<std::string> too_little_data(const std::vector<SeriesPoint>& window, const TrendOptions& o) {
  double duration_s = window.size() < 2 ? 0 : window.back().t_s - window.front().t_s;
  if (duration_s < o.min_duration_s) {
    return "only " + seconds(duration_s) + " after warm-up; need " + seconds(o.min_duration_s);
  }
  if (window.size() < o.min_points) {
    return "only " + std::to_string(window.size()) + " points after warm-up; need " + std::to_string(o.min_points);
  }
  return std::nullopt;
}

// +1 or -1 when r passes significance and both growth thresholds in that direction; 0 otherwise,
// with the reason in `why`.
int direction_of(const TrendResult& r, const TrendOptions& o, std::string& why) {
  if (r.p_value >= o.alpha) {
    why = "no significant trend (Mann-Kendall " + p_text(r.p_value) + ")";
    return 0;
  }
  int direction = r.slope_per_s > 0 ? 1 : (r.slope_per_s < 0 ? -1 : 0);
  if (direction == 0 || std::abs(r.slope_per_s) <= o.min_growth_abs_per_s) {
    why = "slope " + rate(r.slope_per_s, o.unit) + " is within the floor of " + rate(o.min_growth_abs_per_s, o.unit);
    return 0;
  }
  double needed = o.min_growth_rel * std::max(std::abs(r.start_level), kTinyLevel);
  if (r.growth_total * direction <= 0 || std::abs(r.growth_total) < needed) {
    why = "changed by " + quantity(r.growth_total, o.unit) + ", under " + percent(o.min_growth_rel) +
          " of the starting level " + quantity(r.start_level, o.unit);
    return 0;
  }
  return direction;
}

std::string trend_reason(const TrendResult& r, const TrendOptions& o) {
  std::string text = std::string(r.slope_per_s > 0 ? "rises " : "falls ") + rate(std::abs(r.slope_per_s), o.unit) +
                     " (Theil-Sen), Mann-Kendall " + p_text(r.p_value) + ", from " + quantity(r.start_level, o.unit) +
                     " to " + quantity(r.end_level, o.unit);
  return text;
}

std::vector<SeriesPoint> last_half(const std::vector<SeriesPoint>& tested) {
  return {tested.begin() + static_cast<std::ptrdiff_t>(tested.size() / 2), tested.end()};
}

// Whether the last half of the window plausibly still moves in `direction` at a quarter of the
// whole window's rate. A step (cache filled once) makes the whole-window test significant, but its
// last half is flat with a tight interval around 0. Too few points to tell count as persisting.
bool persists(const TrendResult& late, int direction, double whole_slope_per_s) {
  if (late.points_used < 3) return true;
  double strongest_late = direction > 0 ? late.slope_high_per_s : -late.slope_low_per_s;
  return strongest_late >= kPersistFraction * std::abs(whole_slope_per_s);
}

// The share of the total change one jump between neighbouring points must make before the series
// is tested without it: a steady trend's largest jump is a small part of its change.
constexpr double kStepShare = 0.3;

// A single jump with the series level around it (a heap expanded once, a cache filled at once, a
// pool sized up) is one event, not a trend, even with a small bump after it: the series must still
// move without its largest jump. A jump is measured between the medians of the kStepSide points
// on either side, so that one stray reading (a dip to zero and back) is no jump. Returns the reason
// when the series does not move without it.
constexpr size_t kStepSide = 3;
// How many median absolute deviations of the level a step must stand clear of.
constexpr double kStepClearance = 6;

double median_of(std::vector<double> values) {
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2), values.end());
  return values[values.size() / 2];
}

std::optional<std::string> one_step(const std::vector<SeriesPoint>& tested, const TrendOptions& o, int direction,
                                    const TrendResult& r) {
  if (tested.size() < 4 * kStepSide) return std::nullopt;
  size_t at = 0;
  double step = 0;
  for (size_t i = kStepSide; i + kStepSide <= tested.size(); ++i) {
    std::vector<double> before, after;
    for (size_t j = i - kStepSide; j < i; ++j) before.push_back(tested[j].value);
    for (size_t j = i; j < i + kStepSide; ++j) after.push_back(tested[j].value);
    double jump = (median_of(after) - median_of(before)) * direction;
    if (jump > step) {
      step = jump;
      at = i;
    }
  }
  if (!(step > kStepShare * std::abs(r.growth_total))) return std::nullopt;
  // A step stands clear of the wobble of the level on at least one side of it; noise that swings
  // as far as the "step" (a heap that rises and falls by megabytes) makes no step.
  auto spread = [&](size_t from, size_t to) {
    std::vector<double> values;
    for (size_t i = from; i < to; ++i) values.push_back(tested[i].value);
    double middle = median_of(values);
    for (double& value : values) value = std::abs(value - middle);
    return median_of(values);
  };
  if (!(step > kStepClearance * std::min(spread(0, at), spread(at, tested.size())))) return std::nullopt;
  std::vector<SeriesPoint> without = tested;
  for (size_t i = at; i < without.size(); ++i) without[i].value -= step * direction;
  TrendResult rest;
  measure(without, o.correct_autocorrelation, rest);
  std::string ignored;
  if (direction_of(rest, o, ignored) == direction) return std::nullopt;
  return (direction > 0 ? "rose by " : "fell by ") + quantity(step, o.unit) + " in one step at " +
         fmt::format("{:.1f}", tested[at].t_s - tested.front().t_s) +
         " s into the window and did not keep moving around it: a one-time change, not a trend";
}

void decide(const std::vector<SeriesPoint>& tested, const TrendOptions& o, TrendResult& r) {
  int direction = direction_of(r, o, r.reason);
  if (direction == 0) {
    r.verdict = TrendVerdict::kFlat;
    return;
  }
  TrendResult late;
  measure(last_half(tested), o.correct_autocorrelation, late);
  if (!persists(late, direction, r.slope_per_s)) {
    r.verdict = TrendVerdict::kFlat;
    r.levelled_off = true;
    r.reason = "changed by " + quantity(r.growth_total, o.unit) + " then levelled off: the last half moves " +
               rate(late.slope_per_s, o.unit) + ", under a quarter of " + rate(r.slope_per_s, o.unit);
    return;
  }
  if (std::optional<std::string> step = one_step(tested, o, direction, r)) {
    r.verdict = TrendVerdict::kFlat;
    r.one_step = true;
    r.reason = *step;
    return;
  }
  r.verdict = direction > 0 ? TrendVerdict::kGrowing : TrendVerdict::kShrinking;
  r.reason = trend_reason(r, o);
}

// The sawtooth's cycle minima when the options allow and the series is one, else the series.
std::vector<SeriesPoint> series_to_test(std::vector<SeriesPoint> window, const TrendOptions& o, bool& used_envelope) {
  used_envelope = false;
  if (!o.use_envelope) return window;
  std::vector<Fall> falls = big_falls(window);
  if (!is_sawtooth(window, falls)) return window;
  used_envelope = true;
  return cycle_minima(window, falls);
}

}  // namespace

double theil_sen_slope(const std::vector<SeriesPoint>& points) {
  std::vector<double> slopes = pairwise_slopes(points);
  return slopes.empty() ? 0 : median_in_place(slopes);
}

double mann_kendall_p(const std::vector<SeriesPoint>& points, bool correct_autocorrelation) {
  if (points.size() < 3) return 1;
  KendallS ks = kendall_s(points);
  double ratio = correct_autocorrelation ? autocorrelation_ratio(points, theil_sen_slope(points)) : 1.0;
  return p_from_s(ks.s, ks.var_s * ratio);
}

std::vector<SeriesPoint> lower_envelope(const std::vector<SeriesPoint>& points) {
  std::vector<Fall> falls = big_falls(points);
  if (is_sawtooth(points, falls)) return cycle_minima(points, falls);
  return window_minima(points, std::max<size_t>(3, points.size() / 10));
}

std::optional<double> time_to_limit_s(const TrendResult& trend, double current_value, double limit_value) {
  if (trend.verdict != TrendVerdict::kGrowing || !(trend.slope_per_s > 0)) return std::nullopt;
  if (current_value >= limit_value) return 0.0;
  return (limit_value - current_value) / trend.slope_per_s;
}

}  // namespace memdx::analyze

namespace memdx {

const char* to_string(TrendVerdict verdict) {
  switch (verdict) {
    case TrendVerdict::kInsufficient:
      return "insufficient";
    case TrendVerdict::kFlat:
      return "flat";
    case TrendVerdict::kGrowing:
      return "growing";
    case TrendVerdict::kShrinking:
      return "shrinking";
  }
  return "unknown";
}

TrendResult test_trend(const std::vector<SeriesPoint>& series, const TrendOptions& options) {
  using namespace analyze;  // the steps above
  TrendResult r;
  std::vector<SeriesPoint> window = after_warmup(clean(series), options.warmup_s);
  r.points_used = window.size();
  if (auto why = too_little_data(window, options)) {
    r.reason = *why;
    return r;
  }
  // An idle process's series is one value repeated: nothing to test, and the commonest case.
  if (std::all_of(window.begin(), window.end(),
                  [&](const SeriesPoint& p) { return p.value == window.front().value; })) {
    r.verdict = TrendVerdict::kFlat;
    r.start_level = r.end_level = window.front().value;
    r.p_value = 1;
    r.constant = true;
    r.reason = "constant";
    return r;
  }
  std::vector<SeriesPoint> tested = series_to_test(std::move(window), options, r.used_envelope);
  r.points_used = tested.size();
  size_t cycles_needed = min_points_for_significance(options.alpha);
  if (r.used_envelope && tested.size() < cycles_needed) {
    r.reason = "sawtooth with only " + std::to_string(tested.size()) + " full cycles; need " +
               std::to_string(cycles_needed) + " to judge its minima";
    return r;
  }
  if (tested.size() > kMaxTestPoints) tested = bin_medians(tested, kMaxTestPoints);
  measure(tested, options.correct_autocorrelation, r);
  decide(tested, options, r);
  if (r.used_envelope) r.reason += " (judged on the minima of " + std::to_string(r.points_used) + " cycles)";
  return r;
}

}  // namespace memdx
