// Tests of the robust trend test on synthetic memory series with known answers: ramps, noise,
// GC sawtooths, autocorrelated wander, steps, and the helpers on exact data.
#include "analyze/trend.h"

#include "analyze/diagnose.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace memdx::analyze {
namespace {

constexpr double kMB = 1e6;
constexpr double kIntervalS = 0.2;  // memdx's default sampling interval

// value_at(t_s) sampled every kIntervalS over [0, duration_s), plus Gaussian noise (fixed seed).
template <typename F>
std::vector<SeriesPoint> sample(double duration_s, F value_at, double noise_sigma, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0, 1);
  std::vector<SeriesPoint> series;
  auto n = static_cast<size_t>(std::llround(duration_s / kIntervalS));
  for (size_t i = 0; i < n; ++i) {
    double t_s = static_cast<double>(i) * kIntervalS;
    series.push_back({t_s, value_at(t_s) + noise_sigma * noise(rng)});
  }
  return series;
}

// A GC-style sawtooth: each cycle ramps from its floor up by `amplitude`, then drops to the next
// floor; floors rise by `floor_step` per cycle (0 for a bounded sawtooth).
std::vector<SeriesPoint> sawtooth(double duration_s, double period_s, double base, double amplitude, double floor_step,
                                  double noise_sigma, uint64_t seed) {
  return sample(
      duration_s,
      [&](double t_s) {
        double cycle = std::floor(t_s / period_s + 1e-9);
        double phase = t_s / period_s - cycle;
        return base + floor_step * cycle + amplitude * phase;
      },
      noise_sigma, seed);
}

// AR(1) noise around `level`: x_t = phi x_{t-1} + e_t, started from its stationary distribution.
std::vector<SeriesPoint> ar1(size_t n, double phi, double level, double sigma, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> e(0, sigma);
  double x = e(rng) / std::sqrt(1 - phi * phi);
  std::vector<SeriesPoint> series;
  for (size_t i = 0; i < n; ++i) {
    x = phi * x + e(rng);
    series.push_back({static_cast<double>(i) * kIntervalS, level + x});
  }
  return series;
}

TrendOptions bytes_options() {
  TrendOptions options;
  options.unit = "B";
  return options;
}

TEST(TrendTest, NoisyLinearRampIsGrowingAtItsSlope) {
  const double slope = 1 * kMB;  // per second
  auto series = sample(
      30, [&](double t_s) { return 50 * kMB + slope * t_s; }, 1 * kMB, 42);
  TrendResult r = test_trend(series, bytes_options());
  EXPECT_EQ(r.verdict, TrendVerdict::kGrowing) << r.reason;
  EXPECT_NEAR(r.slope_per_s, slope, 0.05 * slope);
  EXPECT_GT(r.confidence, 0.99);
  EXPECT_LT(r.slope_low_per_s, r.slope_per_s);
  EXPECT_GT(r.slope_high_per_s, r.slope_per_s);
  EXPECT_LT(r.slope_high_per_s - r.slope_low_per_s, 0.2 * slope);
  EXPECT_FALSE(r.used_envelope);
  EXPECT_EQ(r.points_used, 140u);                               // 150 samples minus the 10 of the 2 s warm-up
  EXPECT_NEAR(r.start_level, 50 * kMB + 3.4 * slope, 2 * kMB);  // median of t in [2, 4.8]
  EXPECT_NEAR(r.end_level, 50 * kMB + 28.4 * slope, 2 * kMB);   // median of t in [27, 29.8]
  EXPECT_NE(r.reason.find("B/s"), std::string::npos) << r.reason;
}

TEST(TrendTest, SlopeIntervalCoversTheTrueSlopeAboutNineteenTimesInTwenty) {
  const double slope = 1 * kMB;
  int covered = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    auto series = sample(
        30, [&](double t_s) { return 50 * kMB + slope * t_s; }, 1 * kMB, seed);
    TrendResult r = test_trend(series, bytes_options());
    if (r.slope_low_per_s <= slope && slope <= r.slope_high_per_s) ++covered;
  }
  EXPECT_GE(covered, 35);  // ~95% nominal: 38 expected
}

TEST(TrendTest, NoisyFlatSeriesIsFlat) {
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    auto series = sample(
        30, [](double) { return 100 * kMB; }, 2 * kMB, seed);
    TrendResult r = test_trend(series, bytes_options());
    EXPECT_EQ(r.verdict, TrendVerdict::kFlat) << "seed " << seed << ": " << r.reason;
    EXPECT_NEAR(r.slope_per_s, 0, 0.2 * kMB);
  }
}

TEST(TrendTest, BoundedGcSawtoothIsFlatOnItsEnvelope) {
  // Ramp up by 100 MB, collect, repeat: 10 cycles over 30 s.
  auto series = sawtooth(30, 3, 20 * kMB, 100 * kMB, 0, 0.5 * kMB, 7);
  TrendResult r = test_trend(series, bytes_options());
  EXPECT_EQ(r.verdict, TrendVerdict::kFlat) << r.reason;
  EXPECT_TRUE(r.used_envelope);
  EXPECT_EQ(r.points_used, 9u);  // cycles 2..10; the first one is cut by the warm-up
  EXPECT_NEAR(r.start_level, 20 * kMB, 2 * kMB);
  EXPECT_NEAR(r.slope_per_s, 0, 0.2 * kMB);
}

TEST(TrendTest, SawtoothWithRisingMinimaIsGrowingAtTheMinimaSlope) {
  // A leak under GC: every cycle retains 5 MB more, i.e. the floor rises 5 MB / 3 s.
  const double floor_slope = 5 * kMB / 3;
  auto series = sawtooth(30, 3, 20 * kMB, 100 * kMB, 5 * kMB, 0.3 * kMB, 11);
  TrendResult r = test_trend(series, bytes_options());
  EXPECT_EQ(r.verdict, TrendVerdict::kGrowing) << r.reason;
  EXPECT_TRUE(r.used_envelope);
  EXPECT_NEAR(r.slope_per_s, floor_slope, 0.05 * floor_slope);
  EXPECT_NEAR(r.start_level, 25 * kMB, 1 * kMB);  // floor of cycle 2
  EXPECT_NEAR(r.end_level, 65 * kMB, 1 * kMB);    // floor of cycle 10
  EXPECT_NE(r.reason.find("cycles"), std::string::npos) << r.reason;

  TrendOptions raw = bytes_options();
  raw.use_envelope = false;
  TrendResult peaks_included = test_trend(series, raw);
  EXPECT_FALSE(peaks_included.used_envelope);
  EXPECT_EQ(peaks_included.points_used, 140u);
}

TEST(TrendTest, StronglyAutocorrelatedNoiseIsRarelyGrowing) {
  // phi = 0.9 wanders for tens of samples, which the uncorrected Mann-Kendall test reads as a trend.
  // The relative floor is off so that only the autocorrelation correction stands in the way.
  TrendOptions options = bytes_options();
  options.min_growth_rel = 0;
  int growing = 0;
  int uncorrected_significant = 0;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    auto series = ar1(150, 0.9, 100 * kMB, 1 * kMB, seed);
    if (test_trend(series, options).verdict == TrendVerdict::kGrowing) ++growing;
    if (mann_kendall_p(series, false) < options.alpha) ++uncorrected_significant;
  }
  EXPECT_LE(growing, 1);
  EXPECT_GE(uncorrected_significant, 6);  // the correction is what makes the difference
}

TEST(TrendTest, StartupStepInsideWarmupIsFlat) {
  auto series = sample(
      30, [](double t_s) { return t_s < 1 ? 20 * kMB : 200 * kMB; }, 1 * kMB, 3);
  TrendResult r = test_trend(series, bytes_options());
  EXPECT_EQ(r.verdict, TrendVerdict::kFlat) << r.reason;
  EXPECT_NEAR(r.start_level, 200 * kMB, 1 * kMB);  // the step is not part of the window
  EXPECT_EQ(r.points_used, 140u);
}

// A cache filled once mid-run, then flat. The whole window is overwhelmingly significant (every
// pair across the step rises) and grows far beyond the relative floor, but the growth does not
// persist: the last half is flat with a tight interval around 0. Bounded growth is not a leak, so
// the verdict is kFlat and the reason says it levelled off.
TEST(TrendTest, SingleStepMidRunIsBoundedNotGrowing) {
  auto series = sample(
      30, [](double t_s) { return t_s < 15 ? 50 * kMB : 150 * kMB; }, 1 * kMB, 5);
  TrendResult r = test_trend(series, bytes_options());
  EXPECT_EQ(r.verdict, TrendVerdict::kFlat) << r.reason;
  EXPECT_LT(r.p_value, 1e-6);
  EXPECT_NEAR(r.growth_total, 100 * kMB, 2 * kMB);
  EXPECT_NE(r.reason.find("levelled off"), std::string::npos) << r.reason;
}

TEST(TrendTest, GrowthThatLevelsOffIsFlat) {
  // Warming a cache: 10 MB/s for 16 s, then flat. A curved trend like this one must not be
  // mistaken for autocorrelation (it would hide the rise); it is bounded because it stops.
  auto series = sample(
      30, [](double t_s) { return 10 * kMB + 10 * kMB * std::min(t_s, 16.0); }, 0.5 * kMB, 7);
  TrendResult r = test_trend(series, bytes_options());
  EXPECT_EQ(r.verdict, TrendVerdict::kFlat) << r.reason;
  EXPECT_LT(r.p_value, 1e-3);
  EXPECT_NE(r.reason.find("levelled off"), std::string::npos) << r.reason;
}

TEST(TrendTest, CurvedGrowthThatContinuesIsGrowing) {
  // Growth slowing like sqrt(t) never stops; with little noise the curve is far from one line.
  auto series = sample(
      30, [](double t_s) { return 10 * kMB + 50 * kMB * std::sqrt(t_s); }, 0.3 * kMB, 9);
  TrendResult r = test_trend(series, bytes_options());
  EXPECT_EQ(r.verdict, TrendVerdict::kGrowing) << r.reason;
  EXPECT_LT(r.p_value, 1e-6);
}

TEST(TrendTest, GrowthThatSlowsButContinuesIsGrowing) {
  // 10 MB/s for 16 s, then 5 MB/s: the last half still grows at half the overall rate.
  auto series = sample(
      30, [](double t_s) { return 10 * kMB + 10 * kMB * std::min(t_s, 16.0) + 5 * kMB * std::max(0.0, t_s - 16); },
      0.5 * kMB, 13);
  TrendResult r = test_trend(series, bytes_options());
  EXPECT_EQ(r.verdict, TrendVerdict::kGrowing) << r.reason;
  EXPECT_GT(r.slope_per_s, 5 * kMB);
  EXPECT_LT(r.slope_per_s, 10 * kMB);
}

TEST(TrendTest, TooShortOrTooFewPointsIsInsufficient) {
  auto short_series = sample(
      5, [](double t_s) { return t_s * kMB; }, 0, 1);  // 3 s after warm-up
  TrendResult r = test_trend(short_series, bytes_options());
  EXPECT_EQ(r.verdict, TrendVerdict::kInsufficient);
  EXPECT_NE(r.reason.find("2.8 s"), std::string::npos) << r.reason;

  std::vector<SeriesPoint> sparse;
  for (int i = 0; i < 10; ++i) sparse.push_back({2.0 * i, i * kMB});  // 18 s but 9 points after warm-up
  r = test_trend(sparse, bytes_options());
  EXPECT_EQ(r.verdict, TrendVerdict::kInsufficient);
  EXPECT_NE(r.reason.find("9 points"), std::string::npos) << r.reason;

  EXPECT_EQ(test_trend({}, bytes_options()).verdict, TrendVerdict::kInsufficient);
}

TEST(TrendTest, SawtoothWithTooFewCyclesIsInsufficient) {
  // Four 7.5 s cycles: after warm-up 3 full troughs, and 3 points can never be significant.
  auto series = sawtooth(30, 7.5, 20 * kMB, 100 * kMB, 5 * kMB, 0.3 * kMB, 17);
  TrendResult r = test_trend(series, bytes_options());
  EXPECT_EQ(r.verdict, TrendVerdict::kInsufficient) << r.reason;
  EXPECT_TRUE(r.used_envelope);
  EXPECT_NE(r.reason.find("cycles"), std::string::npos) << r.reason;
}

TEST(TrendTest, OneSampleDipsDoNotMakeARampASawtooth) {
  // A file remapped each tick, sampled twice between munmap and mmap: two readings drop to zero
  // and recover at once. The ramp underneath is still growth.
  auto series = sample(
      10, [](double t) { return 10 * kMB + 8 * kMB * t; }, 0.2 * kMB, 5);
  series[20].value = 0;
  series[37].value = 0;
  TrendResult r = test_trend(series, bytes_options());
  EXPECT_FALSE(r.used_envelope);
  EXPECT_EQ(r.verdict, TrendVerdict::kGrowing) << r.reason;
  EXPECT_NEAR(r.slope_per_s, 8 * kMB, 0.8 * kMB);
}

TEST(TrendTest, GrowthBelowAbsoluteFloorIsFlat) {
  auto series = sample(
      30, [](double t_s) { return 100e3 + 10e3 * t_s; }, 1e3, 19);  // 10 kB/s
  TrendOptions options = bytes_options();
  options.min_growth_abs_per_s = 64 * 1024;
  TrendResult r = test_trend(series, options);
  EXPECT_EQ(r.verdict, TrendVerdict::kFlat) << r.reason;
  EXPECT_NEAR(r.slope_per_s, 10e3, 0.5e3);
  EXPECT_NE(r.reason.find("floor"), std::string::npos) << r.reason;

  options.min_growth_abs_per_s = 0;
  EXPECT_EQ(test_trend(series, options).verdict, TrendVerdict::kGrowing);
}

TEST(TrendTest, GrowthBelowRelativeFloorIsFlat) {
  // 1 MB/s on a 1 GB process: 28 MB over the window, under 10% of the starting level.
  auto series = sample(
      30, [](double t_s) { return 1000 * kMB + 1 * kMB * t_s; }, 0.5 * kMB, 23);
  TrendResult r = test_trend(series, bytes_options());
  EXPECT_EQ(r.verdict, TrendVerdict::kFlat) << r.reason;
  EXPECT_LT(r.p_value, 1e-6);
  EXPECT_NE(r.reason.find("10%"), std::string::npos) << r.reason;

  TrendOptions lenient = bytes_options();
  lenient.min_growth_rel = 0.01;
  EXPECT_EQ(test_trend(series, lenient).verdict, TrendVerdict::kGrowing);
}

TEST(TrendTest, DownwardRampIsShrinking) {
  auto series = sample(
      30, [](double t_s) { return 500 * kMB - 5 * kMB * t_s; }, 1 * kMB, 29);
  TrendResult r = test_trend(series, bytes_options());
  EXPECT_EQ(r.verdict, TrendVerdict::kShrinking) << r.reason;
  EXPECT_NEAR(r.slope_per_s, -5 * kMB, 0.25 * kMB);
  EXPECT_LT(r.growth_total, -100 * kMB);
  EXPECT_FALSE(time_to_limit_s(r, 400 * kMB, 1000 * kMB).has_value());
}

TEST(TrendTest, UnsortedAndNonFiniteInputIsCleaned) {
  auto series = sample(
      30, [](double t_s) { return 50 * kMB + 1 * kMB * t_s; }, 1 * kMB, 31);
  TrendResult sorted = test_trend(series, bytes_options());
  std::reverse(series.begin(), series.end());
  series.push_back({15.0, std::numeric_limits<double>::quiet_NaN()});
  series.push_back({std::numeric_limits<double>::infinity(), 1.0});
  TrendResult shuffled = test_trend(series, bytes_options());
  EXPECT_EQ(shuffled.verdict, TrendVerdict::kGrowing);
  EXPECT_DOUBLE_EQ(shuffled.slope_per_s, sorted.slope_per_s);
  EXPECT_EQ(shuffled.points_used, sorted.points_used);
}

TEST(TrendTest, LongSeriesIsBinnedBeforePairwiseStatistics) {
  // 20,000 samples (over an hour at 200 ms): tested as kMaxTestPoints time-bin medians, so the
  // O(n^2) statistics stay at about two million pairs.
  auto series = sample(
      4000, [](double t_s) { return 100 * kMB + 10e3 * t_s; }, 2 * kMB, 37);
  ASSERT_EQ(series.size(), 20000u);
  TrendResult r = test_trend(series, bytes_options());
  EXPECT_EQ(r.verdict, TrendVerdict::kGrowing) << r.reason;
  EXPECT_EQ(r.points_used, kMaxTestPoints);
  EXPECT_NEAR(r.slope_per_s, 10e3, 0.02 * 10e3);
}

TEST(TheilSenTest, ExactLineIgnoringOneOutlier) {
  std::vector<SeriesPoint> points;
  for (int i = 0; i <= 10; ++i) points.push_back({0.5 * i, 3 + 2.5 * (0.5 * i)});
  EXPECT_DOUBLE_EQ(theil_sen_slope(points), 2.5);
  points[4].value = 1e9;  // 10 of 55 pair slopes are wild, the median is not
  EXPECT_DOUBLE_EQ(theil_sen_slope(points), 2.5);
}

TEST(TheilSenTest, IrregularTimesAndDegenerateInput) {
  std::vector<SeriesPoint> points = {{0, 10}, {0.1, 9.8}, {1.5, 7}, {4, 2}, {4.5, 1}};  // slope -2
  EXPECT_DOUBLE_EQ(theil_sen_slope(points), -2.0);
  EXPECT_EQ(theil_sen_slope({}), 0.0);
  EXPECT_EQ(theil_sen_slope({{1, 5}}), 0.0);
  EXPECT_EQ(theil_sen_slope({{1, 5}, {1, 9}}), 0.0);  // no two distinct times
}

TEST(MannKendallTest, PerfectlyIncreasingTwentyPointsIsHighlySignificant) {
  std::vector<SeriesPoint> points;
  for (int i = 0; i < 20; ++i) points.push_back({1.0 * i, 100.0 + i});
  // S = 190, Var(S) = 20*19*45/18 = 950, z = 189/sqrt(950).
  double expected = std::erfc(189 / std::sqrt(950.0) / std::sqrt(2.0));
  EXPECT_NEAR(mann_kendall_p(points, false), expected, 1e-15);
  EXPECT_LT(mann_kendall_p(points, false), 1e-6);
  EXPECT_LT(mann_kendall_p(points, true), 1e-6);  // a perfect line has no residual to correlate

  std::reverse(points.begin(), points.end());
  for (size_t i = 0; i < points.size(); ++i) points[i].t_s = 1.0 * static_cast<double>(i);
  EXPECT_NEAR(mann_kendall_p(points, false), expected, 1e-15);  // two-sided
}

TEST(MannKendallTest, TiesAndShortSeries) {
  std::vector<SeriesPoint> tied;
  for (int i = 0; i < 20; ++i) tied.push_back({1.0 * i, 7.0});
  EXPECT_EQ(mann_kendall_p(tied, false), 1.0);
  EXPECT_EQ(mann_kendall_p({{0, 1}, {1, 2}}, false), 1.0);

  // 0 0 1 1 2 2 ... : S = 180 of 190 pairs, ties shrink Var(S) to (20*19*45 - 10*2*1*9)/18 = 940.
  std::vector<SeriesPoint> steps;
  for (int i = 0; i < 20; ++i) steps.push_back({1.0 * i, static_cast<double>(i / 2)});
  EXPECT_NEAR(mann_kendall_p(steps, false), std::erfc(179 / std::sqrt(940.0) / std::sqrt(2.0)), 1e-15);
}

TEST(MannKendallTest, CorrectionWidensAutocorrelatedButNotIndependentSeries) {
  auto wander = ar1(150, 0.9, 0, 1, 2);
  EXPECT_GT(mann_kendall_p(wander, true), mann_kendall_p(wander, false));
  auto line = sample(
      30, [](double t_s) { return t_s; }, 0, 1);
  EXPECT_EQ(mann_kendall_p(line, true), mann_kendall_p(line, false));
}

TEST(LowerEnvelopeTest, MonotoneSeriesKeepsItsSlope) {
  auto rising = sample(
      30, [](double t_s) { return 5 + 2 * t_s; }, 0, 1);
  auto envelope = lower_envelope(rising);
  EXPECT_EQ(envelope.size(), 10u);  // windows of n/10 = 15 points
  EXPECT_NEAR(theil_sen_slope(envelope), 2.0, 1e-9);
  EXPECT_DOUBLE_EQ(envelope.front().value, rising.front().value);

  auto falling = sample(
      30, [](double t_s) { return 100 - 3 * t_s; }, 0, 1);
  EXPECT_NEAR(theil_sen_slope(lower_envelope(falling)), -3.0, 1e-9);
}

TEST(LowerEnvelopeTest, SawtoothGivesOneTroughPerCycle) {
  auto series = sawtooth(30, 3, 20 * kMB, 100 * kMB, 5 * kMB, 0, 1);
  auto envelope = lower_envelope(series);
  ASSERT_EQ(envelope.size(), 9u);  // 10 cycles; the one before the first fall may be cut, so is left out
  for (size_t k = 0; k < envelope.size(); ++k) {
    EXPECT_NEAR(envelope[k].t_s, 3.0 * static_cast<double>(k + 1), 1e-9);
    EXPECT_NEAR(envelope[k].value, 20 * kMB + 5 * kMB * static_cast<double>(k + 1), 1);
  }
}

TEST(TimeToLimitTest, KnownRamp) {
  auto series = sample(
      30, [](double t_s) { return 100 * kMB + 2 * kMB * t_s; }, 0.2 * kMB, 41);
  TrendResult r = test_trend(series, bytes_options());
  ASSERT_EQ(r.verdict, TrendVerdict::kGrowing);
  auto seconds = time_to_limit_s(r, 160 * kMB, 1160 * kMB);  // 1000 MB to go at 2 MB/s
  ASSERT_TRUE(seconds.has_value());
  EXPECT_NEAR(*seconds, 500, 10);
  EXPECT_EQ(time_to_limit_s(r, 2000 * kMB, 1160 * kMB), 0.0);

  TrendResult flat = r;
  flat.verdict = TrendVerdict::kFlat;
  EXPECT_FALSE(time_to_limit_s(flat, 160 * kMB, 1160 * kMB).has_value());
}

TEST(TrendVerdictTest, Names) {
  EXPECT_STREQ(to_string(TrendVerdict::kInsufficient), "insufficient");
  EXPECT_STREQ(to_string(TrendVerdict::kGrowing), "growing");
}

// ---- One step is not a trend; a steady rise under noise is ------------------------------------

// What memdx judges byte series with: the 64 KiB/s floor, the warm-up.
TrendOptions memdx_bytes() {
  return DiagnoseOptions::bytes_trend_options();
}

// A JVM's anon memory with --no-trace: flat, one heap expansion late in the run (so the last half
// still "rises"), then flat again with a small bump: one event, not a leak.
TEST(TrendShapes, StepThenFlatIsNotGrowing) {
  for (double step_at_s : {12.0, 16.0, 20.0}) {
    for (double noise : {0.02 * kMB, 0.2 * kMB}) {
      auto series = sample(
          24, [&](double t) { return 180 * kMB + (t >= step_at_s ? 2.5 * kMB : 0); }, noise, 41);
      TrendResult r = test_trend(series, memdx_bytes());
      EXPECT_NE(r.verdict, TrendVerdict::kGrowing)
          << "step at " << step_at_s << " s, noise " << noise << ": " << r.reason;
    }
  }
}

// The recorded case: a 10-12 s run whose anon memory steps up once (a heap expansion) and bumps
// by 448 KiB later.
TEST(TrendShapes, StepPlusBumpIsNotGrowing) {
  for (double duration_s : {10.0, 12.0, 20.0}) {
    for (double step_at : {0.3, 0.45, 0.6}) {
      for (double bump_at : {0.75, 0.9}) {
        for (double step_bytes : {1 * kMB, 2.5 * kMB}) {
          auto series = sample(
              duration_s,
              [&](double t) {
                return 180 * kMB + (t >= step_at * duration_s ? step_bytes : 0) +
                       (t >= bump_at * duration_s ? 448 * 1024.0 : 0);
              },
              0.03 * kMB, 43);
          TrendResult r = test_trend(series, memdx_bytes());
          EXPECT_NE(r.verdict, TrendVerdict::kGrowing) << duration_s << " s, step of " << step_bytes << " at "
                                                       << step_at << ", bump at " << bump_at << ": " << r.reason;
        }
      }
    }
  }
}

// Why a flat verdict is flat is a flag for code, never a sentence to parse: over steps at several
// times and sizes, ramps that stop, constants and steady growth, each flag is set exactly where
// the reason says it, and each is set somewhere.
TEST(TrendShapes, FlatVerdictsSayWhyInFlags) {
  std::vector<std::vector<SeriesPoint>> shapes;
  shapes.push_back(sample(
      20, [](double) { return 100 * kMB; }, 0, 1));
  for (double step_at : {0.3, 0.45, 0.6, 0.8}) {
    for (double step_bytes : {2.5 * kMB, 30 * kMB}) {
      shapes.push_back(sample(
          12, [&](double t) { return 50 * kMB + (t >= step_at * 12 ? step_bytes : 0) + (t >= 10 ? 448 * 1024.0 : 0); },
          0.03 * kMB, 43));
    }
  }
  for (double stop_s : {8.0, 12.0, 16.0}) {
    shapes.push_back(sample(
        30, [&](double t) { return 50 * kMB + 2 * kMB * std::min(t, stop_s); }, 0.05 * kMB, 5));
  }
  shapes.push_back(sample(
      30, [](double t) { return 50 * kMB + 2 * kMB * t; }, 0.05 * kMB, 7));
  int constant = 0, levelled_off = 0, one_step = 0, growing = 0;
  for (const auto& shape : shapes) {
    TrendResult r = test_trend(shape, memdx_bytes());
    EXPECT_EQ(r.constant, r.reason == "constant") << r.reason;
    EXPECT_EQ(r.levelled_off, r.reason.find("levelled off") != std::string::npos) << r.reason;
    EXPECT_EQ(r.one_step, r.reason.find("in one step") != std::string::npos) << r.reason;
    if (r.constant || r.levelled_off || r.one_step) {
      EXPECT_EQ(r.verdict, TrendVerdict::kFlat) << r.reason;
    }
    constant += r.constant;
    levelled_off += r.levelled_off;
    one_step += r.one_step;
    growing += r.verdict == TrendVerdict::kGrowing;
  }
  EXPECT_GT(constant, 0);
  EXPECT_GT(levelled_off, 0);
  EXPECT_GT(one_step, 0);
  EXPECT_GT(growing, 0);
}

// A staircase of several steps is still growth: only a single jump is forgiven.
TEST(TrendShapes, AStaircaseIsGrowing) {
  auto series = sample(
      30, [](double t) { return 50 * kMB + 4 * kMB * std::floor(t / 6); }, 0.05 * kMB, 47);
  TrendResult r = test_trend(series, memdx_bytes());
  EXPECT_EQ(r.verdict, TrendVerdict::kGrowing) << r.reason;
}

// A slow leak (what one site's live bytes show) at several rates, with noise of several sizes and
// periods on top: always growing. (Under noise of megabytes, as a whole heap swings, the series
// alone cannot show it: the site's own series does, see the heap truth tests.)
TEST(TrendShapes, ASlowLeakUnderNoiseIsGrowing) {
  for (double rate : {150e3, 300e3, 600e3}) {
    for (double amplitude : {0.25 * kMB, 0.5 * kMB}) {
      for (double period_s : {1.5, 4.0}) {
        auto series = sample(
            25, [&](double t) { return 5 * kMB + rate * t + amplitude * std::sin(2 * M_PI * t / period_s); },
            0.05 * kMB, 53);
        TrendResult r = test_trend(series, memdx_bytes());
        EXPECT_EQ(r.verdict, TrendVerdict::kGrowing)
            << "rate " << rate << " B/s, noise " << amplitude << " B every " << period_s << " s: " << r.reason;
      }
    }
  }
}

}  // namespace
}  // namespace memdx::analyze
