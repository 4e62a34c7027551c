// analyze::diagnose on synthetic recordings: which findings each memory pattern gets, on which
// pid, with which rate, confidence and projection; and what it deliberately does not flag.
#include "analyze/diagnose.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "synthetic.h"

namespace memdx::analyze {
namespace {

using model::Finding;
using model::Verdict;
using namespace memdx::synthetic;

::testing::AssertionResult contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\"\n  does not contain \"" << part << "\"";
}

std::string describe(const Verdict& v) {
  std::string text;
  for (const Finding& f : v.findings) {
    text += "  " + std::string(to_string(f.severity)) + " " + to_string(f.kind) + " pid " + std::to_string(f.pid) +
            ": " + f.evidence + "\n";
  }
  return text;
}

Verdict diagnose_one(const ProcessSpec& spec) {
  return diagnose(recording_of({spec}));
}

// ---- leaks -------------------------------------------------------------------------------------

TEST(Diagnose, LinearAnonGrowthIsOneAnonLeak) {
  ProcessSpec spec;
  spec.anon = linear(3 * kMiB, 2 * kMiB);
  spec.noise_bytes = 256 * kKiB;
  Verdict v = diagnose_one(spec);
  auto leaks = leaks_of(v);
  ASSERT_EQ(leaks.size(), 1u) << describe(v);
  const Finding& f = leaks[0];
  EXPECT_EQ(f.kind, FindingKind::kAnonGrowth);
  EXPECT_EQ(f.pid, 4242);
  EXPECT_EQ(f.series, Series::kRssAnon);
  EXPECT_EQ(f.unit, Unit::kBytes);
  EXPECT_NEAR(f.rate_per_s, 2 * kMiB, 0.1 * 2 * kMiB);
  EXPECT_GT(f.confidence, 0.99);
  EXPECT_LT(f.start_level, f.end_level);
  EXPECT_TRUE(contains(f.evidence, "anon RSS rose from "));
  EXPECT_TRUE(contains(f.evidence, " over 8.0 s (Theil-Sen slope 2."));
  EXPECT_TRUE(contains(f.evidence, "MiB/s, Mann-Kendall p<0.001)"));
  EXPECT_TRUE(model::has_leak(v));
  EXPECT_TRUE(findings_of(v, FindingKind::kNoGrowth).empty()) << describe(v);
}

TEST(Diagnose, LeakIsOnTheChildWhileTheParentStaysFlat) {
  ProcessSpec parent;
  parent.pid = 4242;
  parent.command = {"./parent"};
  ProcessSpec child;
  child.pid = 4243;
  child.ppid = 4242;
  child.command = {"./child_leaker"};
  child.first_seen_ms = 400;
  child.anon = linear(3 * kMiB, 2 * kMiB);
  child.seed = 2;
  Verdict v = diagnose(recording_of({parent, child}));
  auto leaks = leaks_of(v);
  ASSERT_EQ(leaks.size(), 1u) << describe(v);
  EXPECT_EQ(leaks[0].pid, 4243);
  EXPECT_EQ(leaks[0].kind, FindingKind::kAnonGrowth);
  auto flat_ones = findings_of(v, FindingKind::kNoGrowth);
  ASSERT_EQ(flat_ones.size(), 1u) << describe(v);
  EXPECT_EQ(flat_ones[0].pid, 4242);
  EXPECT_EQ(flat_ones[0].severity, Severity::kInfo);
  EXPECT_TRUE(contains(flat_ones[0].evidence, "RSS stayed between "));
  EXPECT_TRUE(contains(flat_ones[0].evidence, "no series grew"));
}

TEST(Diagnose, FdGrowthIsAnFdLeak) {
  ProcessSpec spec;
  spec.fds = linear(10, 40);
  Verdict v = diagnose_one(spec);
  auto leaks = leaks_of(v);
  ASSERT_EQ(leaks.size(), 1u) << describe(v);
  EXPECT_EQ(leaks[0].kind, FindingKind::kFdGrowth);
  EXPECT_EQ(leaks[0].unit, Unit::kFds);
  EXPECT_EQ(leaks[0].series, Series::kFds);
  EXPECT_NEAR(leaks[0].rate_per_s, 40, 4);
  EXPECT_FALSE(leaks[0].time_to_limit_s.has_value());  // fds do not run into a memory limit
  EXPECT_TRUE(contains(leaks[0].evidence, "open fds rose from "));
  EXPECT_TRUE(contains(leaks[0].evidence, "fds/s"));
}

TEST(Diagnose, ThreadGrowthIsAThreadLeak) {
  ProcessSpec spec;
  spec.threads = linear(2, 8);
  Verdict v = diagnose_one(spec);
  auto leaks = leaks_of(v);
  ASSERT_EQ(leaks.size(), 1u) << describe(v);
  EXPECT_EQ(leaks[0].kind, FindingKind::kThreadGrowth);
  EXPECT_EQ(leaks[0].unit, Unit::kThreads);
  EXPECT_NEAR(leaks[0].rate_per_s, 8, 0.8);
}

TEST(Diagnose, AFewLazilyOpenedFdsAreNotALeak) {
  ProcessSpec spec;
  spec.fds = [](double t_s) { return 10 + std::floor(t_s / 2); };  // +5 over the run, under the +8 needed
  Verdict v = diagnose_one(spec);
  EXPECT_FALSE(model::has_leak(v)) << describe(v);
}

TEST(Diagnose, ShmemGrowthIsAShmemLeak) {
  ProcessSpec spec;
  spec.shmem = linear(1 * kMiB, 10 * kMiB);
  Verdict v = diagnose_one(spec);
  auto leaks = leaks_of(v);
  ASSERT_EQ(leaks.size(), 1u) << describe(v);
  EXPECT_EQ(leaks[0].kind, FindingKind::kShmemGrowth);
  EXPECT_EQ(leaks[0].series, Series::kRssShmem);
  EXPECT_NEAR(leaks[0].rate_per_s, 10 * kMiB, kMiB);
}

TEST(Diagnose, FileBackedGrowthIsInfoNotALeak) {
  ProcessSpec spec;
  spec.file = linear(20 * kMiB, 5 * kMiB);
  Verdict v = diagnose_one(spec);
  EXPECT_FALSE(model::has_leak(v)) << describe(v);
  auto file = findings_of(v, FindingKind::kFileGrowth);
  ASSERT_EQ(file.size(), 1u) << describe(v);
  EXPECT_EQ(file[0].severity, Severity::kInfo);
  EXPECT_TRUE(contains(file[0].evidence, "reclaimable, normally not a leak"));
  EXPECT_FALSE(file[0].time_to_limit_s.has_value());
  EXPECT_TRUE(findings_of(v, FindingKind::kNoGrowth).empty());  // something grew, so no no_growth claim
}

// ---- patterns that must not be flagged ---------------------------------------------------------

TEST(Diagnose, BoundedSawtoothIsNoLeak) {
  ProcessSpec spec;
  spec.duration_s = 20;
  spec.anon = [](double t_s) { return 30 * kMiB + 40 * kMiB * (t_s - std::floor(t_s)); };
  Verdict v = diagnose_one(spec);
  EXPECT_FALSE(model::has_leak(v)) << describe(v);
  EXPECT_EQ(findings_of(v, FindingKind::kNoGrowth).size(), 1u) << describe(v);
}

TEST(Diagnose, SawtoothWhoseLowsRiseIsALeak) {
  ProcessSpec spec;
  spec.duration_s = 30;
  spec.hz = 10;
  spec.anon = [](double t_s) { return 30 * kMiB + 1 * kMiB * t_s + 40 * kMiB * (t_s - std::floor(t_s)); };
  Verdict v = diagnose_one(spec);
  auto leaks = leaks_of(v);
  ASSERT_EQ(leaks.size(), 1u) << describe(v);
  EXPECT_EQ(leaks[0].kind, FindingKind::kAnonGrowth);
  EXPECT_NEAR(leaks[0].rate_per_s, 1 * kMiB, 0.15 * kMiB);
}

TEST(Diagnose, StartupAllocationThenFlatIsNoLeak) {
  ProcessSpec spec;
  spec.anon = [](double t_s) { return 5 * kMiB + 200 * kMiB * std::min(1.0, t_s / 0.5); };
  Verdict v = diagnose_one(spec);
  EXPECT_FALSE(model::has_leak(v)) << describe(v);
  EXPECT_EQ(findings_of(v, FindingKind::kNoGrowth).size(), 1u) << describe(v);
}

TEST(Diagnose, HugeVszWithSmallRssIsReservationOnly) {
  ProcessSpec spec;
  spec.anon = flat(14 * kMiB);
  spec.file = flat(5 * kMiB);
  spec.shmem = flat(1 * kMiB);
  spec.vsz = flat(128 * kGiB);
  spec.noise_bytes = 0;
  Verdict v = diagnose_one(spec);
  EXPECT_FALSE(model::has_leak(v)) << describe(v);
  auto reservation = findings_of(v, FindingKind::kReservationOnly);
  ASSERT_EQ(reservation.size(), 1u) << describe(v);
  EXPECT_EQ(reservation[0].severity, Severity::kInfo);
  EXPECT_TRUE(contains(reservation[0].evidence, "peak VSZ 128 GiB"));
  EXPECT_TRUE(contains(reservation[0].evidence, "peak RSS 20.0 MiB"));
  EXPECT_TRUE(contains(reservation[0].evidence, "6554x"));
  EXPECT_EQ(findings_of(v, FindingKind::kNoGrowth).size(), 1u);  // reserving is not growing
}

TEST(Diagnose, TooShortRunIsNoLeakAndSaysWhatIsNeeded) {
  ProcessSpec spec;
  spec.duration_s = 1.5;
  spec.anon = linear(3 * kMiB, 20 * kMiB);
  Verdict v = diagnose_one(spec);
  EXPECT_FALSE(model::has_leak(v));
  ASSERT_EQ(v.findings.size(), 1u) << describe(v);
  const Finding& f = v.findings[0];
  EXPECT_EQ(f.kind, FindingKind::kNoGrowth);
  EXPECT_EQ(f.severity, Severity::kInfo);
  EXPECT_EQ(f.pid, 4242);
  EXPECT_EQ(f.confidence, 0);
  EXPECT_TRUE(contains(f.evidence, "too short to judge"));
  EXPECT_TRUE(contains(f.evidence, "longest 1.4 s"));  // 5 Hz: the last sample is at 1.4 s
  EXPECT_TRUE(contains(f.evidence, "needs 6.0 s of samples"));
}

TEST(Diagnose, EmptyRecordingIsTooShort) {
  Verdict v = diagnose(RecordingData{});
  ASSERT_EQ(v.findings.size(), 1u);
  EXPECT_TRUE(contains(v.findings[0].evidence, "too short"));
  EXPECT_TRUE(v.processes.empty());
}

TEST(Diagnose, ShortLivedChildGetsNoFinding) {
  ProcessSpec parent;
  ProcessSpec child;
  child.pid = 4243;
  child.ppid = 4242;
  child.first_seen_ms = 2000;
  child.duration_s = 1;
  child.anon = linear(1 * kMiB, 50 * kMiB);
  Verdict v = diagnose(recording_of({parent, child}));
  for (const Finding& f : v.findings) EXPECT_EQ(f.pid, 4242) << describe(v);
  EXPECT_EQ(v.processes.size(), 2u);
}

// ---- heap, swap ----------------------------------------------------------------------------------

TEST(Diagnose, HeapGrowthReplacesAnonGrowthItExplains) {
  ProcessSpec spec;
  spec.heap_live = linear(10 * kMiB, 2 * kMiB);
  spec.anon = linear(20 * kMiB, 2.2 * kMiB);
  Verdict v = diagnose_one(spec);
  auto leaks = leaks_of(v);
  ASSERT_EQ(leaks.size(), 1u) << describe(v);
  EXPECT_EQ(leaks[0].kind, FindingKind::kHeapGrowth);
  EXPECT_EQ(leaks[0].series, Series::kHeapLive);
  EXPECT_TRUE(contains(leaks[0].evidence, "live heap rose from "));
  ASSERT_TRUE(v.processes[0].peak_heap_live_bytes.has_value());
  EXPECT_GT(*v.processes[0].peak_heap_live_bytes, 28 * kMiB);
}

TEST(Diagnose, AnonGrowingFarBeyondTheHeapIsReportedToo) {
  ProcessSpec spec;
  spec.heap_live = linear(10 * kMiB, 1 * kMiB);
  spec.anon = linear(20 * kMiB, 5 * kMiB);
  Verdict v = diagnose_one(spec);
  EXPECT_EQ(findings_of(v, FindingKind::kHeapGrowth).size(), 1u) << describe(v);
  EXPECT_EQ(findings_of(v, FindingKind::kAnonGrowth).size(), 1u) << describe(v);
}

// The tracer's own series (10 points a second, on its clock) rather than samples.
analyze::TracedMemory traced_series(double duration_s, const Curve& heap, const Curve& mapped = flat(0)) {
  analyze::TracedMemory traced;
  for (double t_s = 0; t_s <= duration_s; t_s += 0.1) {
    double clock_s = 5000 + t_s;  // any origin
    traced.heap_live_bytes.push_back({clock_s, heap(t_s)});
    traced.mapped_live_bytes.push_back({clock_s, mapped(t_s)});
  }
  return traced;
}

TEST(Diagnose, TracedLiveHeapGrowthIsAHeapLeakOfThatProcess) {
  ProcessSpec parent;
  ProcessSpec child;
  child.pid = 4243;
  child.ppid = parent.pid;
  child.anon = linear(20 * kMiB, 1.3 * kMiB);
  analyze::RecordingData data = recording_of({parent, child});
  data.traced[child.pid] = traced_series(10, linear(3 * kMiB, 1.2 * kMiB));
  data.traced[parent.pid] = traced_series(10, flat(70 * kKiB));
  Verdict v = analyze::diagnose(data);
  auto leaks = leaks_of(v);
  ASSERT_EQ(leaks.size(), 1u) << describe(v);
  EXPECT_EQ(leaks[0].kind, FindingKind::kHeapGrowth);
  EXPECT_EQ(leaks[0].pid, child.pid);
  EXPECT_NEAR(leaks[0].rate_per_s, 1.2 * kMiB, 0.05 * kMiB);
}

TEST(Diagnose, RssFarAboveTheLiveHeapIsAllocatorRetentionNotALeak) {
  ProcessSpec spec;
  spec.anon = flat(210 * kMiB);
  analyze::RecordingData data = recording_of({spec});
  // 200 MiB allocated at start, 90% freed within the first second.
  data.traced[spec.pid] = traced_series(
      10, [](double t_s) { return t_s < 1 ? 200 * kMiB : 19 * kMiB; }, flat(2 * kMiB));
  Verdict v = analyze::diagnose(data);
  EXPECT_TRUE(leaks_of(v).empty()) << describe(v);
  auto retention = findings_of(v, FindingKind::kAllocatorRetention);
  ASSERT_EQ(retention.size(), 1u) << describe(v);
  EXPECT_EQ(retention[0].severity, Severity::kWarning);
  EXPECT_NEAR(retention[0].end_level, 210 * kMiB, 1 * kMiB);
  EXPECT_NEAR(retention[0].start_level, 21 * kMiB, 0.1 * kMiB);
  EXPECT_TRUE(contains(retention[0].evidence, "malloc_trim")) << retention[0].evidence;
  EXPECT_TRUE(contains(retention[0].evidence, "not a leak")) << retention[0].evidence;
}

TEST(Diagnose, RssCloseToTheLiveHeapIsNoRetention) {
  ProcessSpec spec;
  spec.anon = flat(150 * kMiB);
  analyze::RecordingData data = recording_of({spec});
  // Twice the live heap is the threshold: 80 MiB live under 150 MiB anon is allocator overhead.
  data.traced[spec.pid] = traced_series(10, flat(80 * kMiB));
  EXPECT_TRUE(findings_of(analyze::diagnose(data), FindingKind::kAllocatorRetention).empty());
  // A small process far above its tiny heap: the rest of anon (stacks, .bss) explains 30 MiB.
  ProcessSpec small;
  small.anon = flat(31 * kMiB);
  analyze::RecordingData small_data = recording_of({small});
  small_data.traced[small.pid] = traced_series(10, flat(1 * kMiB));
  EXPECT_TRUE(findings_of(analyze::diagnose(small_data), FindingKind::kAllocatorRetention).empty());
  // Far above a heap that never was bigger: anon memory outside malloc (a big .bss), not retention.
  ProcessSpec global;
  global.anon = flat(210 * kMiB);
  analyze::RecordingData global_data = recording_of({global});
  global_data.traced[global.pid] = traced_series(10, flat(19 * kMiB));
  EXPECT_TRUE(findings_of(analyze::diagnose(global_data), FindingKind::kAllocatorRetention).empty());
}

TEST(Diagnose, WithoutTracerThereIsNoHeapPeak) {
  Verdict v = diagnose_one(ProcessSpec{});
  EXPECT_FALSE(v.processes[0].peak_heap_live_bytes.has_value());
}

TEST(Diagnose, AnonPushedToSwapIsStillAnAnonLeak) {
  ProcessSpec spec;
  spec.anon = flat(100 * kMiB);
  spec.swap = linear(0, 2 * kMiB);
  Verdict v = diagnose_one(spec);
  auto leaks = leaks_of(v);
  ASSERT_EQ(leaks.size(), 1u) << describe(v);
  EXPECT_EQ(leaks[0].kind, FindingKind::kAnonGrowth);
  EXPECT_EQ(leaks[0].series, Series::kRssAnonWithSwap);
  EXPECT_TRUE(contains(leaks[0].evidence, "pushed to swap"));
}

TEST(Diagnose, SwapGrowthAlongsideAnonGrowthIsInItsEvidence) {
  ProcessSpec spec;
  spec.anon = linear(20 * kMiB, 2 * kMiB);
  spec.swap = linear(0, 1 * kMiB);
  Verdict v = diagnose_one(spec);
  auto leaks = leaks_of(v);
  ASSERT_EQ(leaks.size(), 1u) << describe(v);
  EXPECT_EQ(leaks[0].series, Series::kRssAnon);
  EXPECT_TRUE(contains(leaks[0].evidence, "; swap also rose from "));
}

TEST(Diagnose, SwappingOutABoundedProcessIsNoLeak) {
  ProcessSpec spec;
  spec.anon = linear(100 * kMiB, -2 * kMiB);
  spec.swap = linear(0, 2 * kMiB);
  spec.noise_bytes = 0;
  Verdict v = diagnose_one(spec);
  EXPECT_FALSE(model::has_leak(v)) << describe(v);
}

// ---- time to limit -----------------------------------------------------------------------------

TEST(Diagnose, TimeToCgroupLimitIsProjected) {
  ProcessSpec spec;
  spec.anon = linear(3 * kMiB, 2 * kMiB);
  RecordingData data = recording_of({spec});
  data.meta.cgroup_max_bytes = as_bytes(2 * kGiB);
  add_system(data, 10, as_bytes(8 * kGiB), as_bytes(1 * kGiB));
  Verdict v = diagnose(data);
  auto leaks = leaks_of(v);
  ASSERT_EQ(leaks.size(), 1u) << describe(v);
  ASSERT_TRUE(leaks[0].time_to_limit_s.has_value());
  EXPECT_NEAR(*leaks[0].time_to_limit_s, 512, 0.1 * 512);  // 1 GiB left at 2 MiB/s
  EXPECT_EQ(leaks[0].limit, LimitKind::kCgroupMemoryMax);
  EXPECT_EQ(leaks[0].limit_bytes, as_bytes(2 * kGiB));
}

TEST(Diagnose, TimeToLimitFallsBackToMemAvailable) {
  ProcessSpec spec;
  spec.anon = linear(3 * kMiB, 2 * kMiB);
  RecordingData data = recording_of({spec});
  add_system(data, 10, as_bytes(4 * kGiB));
  Verdict v = diagnose(data);
  auto leaks = leaks_of(v);
  ASSERT_EQ(leaks.size(), 1u) << describe(v);
  ASSERT_TRUE(leaks[0].time_to_limit_s.has_value());
  EXPECT_NEAR(*leaks[0].time_to_limit_s, 2048, 0.1 * 2048);
  EXPECT_EQ(leaks[0].limit, LimitKind::kMemAvailable);
}

TEST(Diagnose, CgroupLimitWithoutUsageFallsBackToMemAvailable) {
  ProcessSpec spec;
  spec.anon = linear(3 * kMiB, 2 * kMiB);
  RecordingData data = recording_of({spec});
  data.meta.cgroup_max_bytes = as_bytes(2 * kGiB);
  add_system(data, 10, as_bytes(4 * kGiB));
  Verdict v = diagnose(data);
  ASSERT_EQ(leaks_of(v).size(), 1u);
  EXPECT_EQ(leaks_of(v)[0].limit, LimitKind::kMemAvailable);
}

TEST(Diagnose, NoSystemSamplesNoProjection) {
  ProcessSpec spec;
  spec.anon = linear(3 * kMiB, 2 * kMiB);
  Verdict v = diagnose_one(spec);
  ASSERT_EQ(leaks_of(v).size(), 1u);
  EXPECT_FALSE(leaks_of(v)[0].time_to_limit_s.has_value());
}

// ---- order, summaries, target --------------------------------------------------------------------

TEST(Diagnose, LeaksComeFirstFastestFirstThenInfo) {
  ProcessSpec parent;
  parent.file = linear(20 * kMiB, 5 * kMiB);  // info
  ProcessSpec slow;
  slow.pid = 4243;
  slow.anon = linear(3 * kMiB, 1 * kMiB);
  slow.seed = 3;
  ProcessSpec fast;
  fast.pid = 4244;
  fast.anon = linear(3 * kMiB, 3 * kMiB);
  fast.fds = linear(10, 40);
  fast.seed = 4;
  Verdict v = diagnose(recording_of({parent, slow, fast}));
  ASSERT_EQ(v.findings.size(), 4u) << describe(v);
  EXPECT_EQ(v.findings[0].pid, 4244);
  EXPECT_EQ(v.findings[0].kind, FindingKind::kAnonGrowth);
  EXPECT_EQ(v.findings[1].pid, 4243);
  EXPECT_EQ(v.findings[1].kind, FindingKind::kAnonGrowth);
  EXPECT_EQ(v.findings[2].kind, FindingKind::kFdGrowth);
  EXPECT_EQ(v.findings[3].kind, FindingKind::kFileGrowth);
}

TEST(Diagnose, SummariesAndTarget) {
  ProcessSpec root;
  root.command = {"./app", "--flag"};
  root.exit_code = 3;
  root.anon = linear(10 * kMiB, 1 * kMiB);
  root.noise_bytes = 0;
  ProcessSpec child;
  child.pid = 4243;
  child.ppid = 4242;
  child.command = {"./worker"};
  child.first_seen_ms = 1000;
  child.exits = false;
  RecordingData data = recording_of({root, child});
  Verdict v = diagnose(data);
  EXPECT_EQ(v.target.command, (std::vector<std::string>{"./app", "--flag"}));
  EXPECT_EQ(v.target.pid, 4242);
  EXPECT_EQ(v.target.exit_code, 3);
  EXPECT_FALSE(v.target.exit_signal.has_value());
  EXPECT_NEAR(v.target.duration_s, 11.0, 0.01);  // the child's last sample at 1 s + 10 s
  ASSERT_EQ(v.processes.size(), 2u);
  const model::ProcessSummary& p = v.processes[0];
  EXPECT_EQ(p.pid, 4242);
  EXPECT_EQ(p.ppid, 1);
  EXPECT_EQ(p.command, "./app --flag");
  EXPECT_EQ(p.peak_rss_bytes, as_bytes(20 * kMiB + 20 * kMiB + 1 * kMiB));
  EXPECT_EQ(p.final_rss_bytes, p.peak_rss_bytes);
  EXPECT_EQ(p.peak_vsz_bytes, as_bytes(300 * kMiB));
  ASSERT_TRUE(p.peak_pss_bytes.has_value());
  EXPECT_EQ(p.exit_code, 3);
  ASSERT_TRUE(p.exited_s.has_value());
  EXPECT_NEAR(*p.exited_s, 10.1, 1e-9);
  EXPECT_FALSE(v.processes[1].exited_s.has_value());
  EXPECT_NEAR(v.processes[1].first_seen_s, 1.0, 1e-9);
}

TEST(Diagnose, RootIsTheFirstSeenProcessUnlessNamed) {
  ProcessSpec child;
  child.pid = 100;
  child.first_seen_ms = 500;
  child.command = {"./child"};
  ProcessSpec root;
  root.pid = 200;
  root.command = {"./root"};
  RecordingData data = recording_of({child, root});
  data.meta.command.clear();
  EXPECT_EQ(diagnose(data).target.pid, 200);
  EXPECT_EQ(diagnose(data).target.command, std::vector<std::string>{"./root"});
  data.root_pid = 100;
  EXPECT_EQ(diagnose(data).target.pid, 100);
}

TEST(Diagnose, LongRunsLowerTheByteFloor) {
  ProcessSpec spec;
  spec.duration_s = 600;
  spec.hz = 1;
  spec.anon = linear(20 * kMiB, 16 * kKiB);  // 9.4 MiB in 10 min: under 64 KiB/s, over 4 MiB in total
  spec.noise_bytes = 64 * kKiB;
  Verdict v = diagnose_one(spec);
  auto leaks = leaks_of(v);
  ASSERT_EQ(leaks.size(), 1u) << describe(v);
  EXPECT_EQ(leaks[0].kind, FindingKind::kAnonGrowth);
  DiagnoseOptions strict;
  strict.bytes_floor_total = 1 * kGiB;  // back to the plain 64 KiB/s floor
  EXPECT_FALSE(model::has_leak(diagnose(recording_of({spec}), strict)));
}

}  // namespace
}  // namespace memdx::analyze
