// analyze::notes_for on hand-built reports: which notes fire, for whom, with which numbers.
#include "analyze/notes.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace memdx::analyze {
namespace {

using model::InspectReport;
using model::Note;
using model::ProcessSnapshot;
using model::RegionCategory;

constexpr uint64_t kMiB = 1024 * 1024;
constexpr uint64_t kGiB = 1024 * kMiB;

::testing::AssertionResult contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\"\n  does not contain \"" << part << "\"";
}

ProcessSnapshot process(pid_t pid, uint64_t vsz_bytes, uint64_t rss_bytes) {
  ProcessSnapshot p;
  p.pid = pid;
  p.comm = "app";
  p.memory.vsz_bytes = vsz_bytes;
  p.memory.rss_bytes = rss_bytes;
  return p;
}

InspectReport report_of(std::vector<ProcessSnapshot> processes) {
  InspectReport report;
  report.processes = std::move(processes);
  return report;
}

std::vector<Note> notes_of_kind(const std::vector<Note>& notes, NoteKind kind) {
  std::vector<Note> out;
  std::copy_if(notes.begin(), notes.end(), std::back_inserter(out), [&](const Note& n) { return n.kind == kind; });
  return out;
}

// ---- reservation_only --------------------------------------------------------------------------

TEST(AnalyzeNotes, ReservationOnlyForHugeVszSmallRss) {
  auto notes = notes_for(report_of({process(4242, 8 * kGiB, 64 * kMiB)}));
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0].kind, NoteKind::kReservationOnly);
  EXPECT_EQ(notes[0].pid, 4242);
  EXPECT_TRUE(contains(notes[0].text, "VSZ 8.00 GiB"));
  EXPECT_TRUE(contains(notes[0].text, "RSS 64.0 MiB"));
  EXPECT_TRUE(contains(notes[0].text, "128x"));
  EXPECT_TRUE(contains(notes[0].text, "7.94 GiB is address space reserved"));
  EXPECT_TRUE(contains(notes[0].text, "harmless"));
}

TEST(AnalyzeNotes, ReservationOnlyNamesTheReservedRegions) {
  ProcessSnapshot p = process(7, 8 * kGiB, 64 * kMiB);
  model::RegionTotals reserved;
  reserved.category = RegionCategory::kReserved;
  reserved.count = 3;
  reserved.vsz_bytes = 7 * kGiB;
  p.regions.push_back(reserved);
  auto notes = notes_of_kind(notes_for(report_of({p})), NoteKind::kReservationOnly);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_TRUE(contains(notes[0].text, "(7.00 GiB of it in 3 reserved-only regions)"));

  p.regions[0].count = 1;
  notes = notes_of_kind(notes_for(report_of({p})), NoteKind::kReservationOnly);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_TRUE(contains(notes[0].text, "in 1 reserved-only region)"));
}

TEST(AnalyzeNotes, NoReservationNoteBelowOneGibOrBelowTenTimes) {
  EXPECT_TRUE(notes_for(report_of({process(1, 900 * kMiB, 10 * kMiB)})).empty());
  EXPECT_TRUE(notes_for(report_of({process(1, 8 * kGiB, 1 * kGiB)})).empty());
}

TEST(AnalyzeNotes, ReservationThresholdsAreParameters) {
  NoteThresholds strict;
  strict.reservation_vsz_to_rss = 200;
  EXPECT_TRUE(notes_for(report_of({process(1, 8 * kGiB, 64 * kMiB)}), strict).empty());
  NoteThresholds loose;
  loose.reservation_min_vsz_bytes = 512 * kMiB;
  EXPECT_EQ(notes_of_kind(notes_for(report_of({process(1, 900 * kMiB, 10 * kMiB)}), loose), NoteKind::kReservationOnly)
                .size(),
            1u);
}

TEST(AnalyzeNotes, ReservationWithZeroRssDoesNotDivideByZero) {
  auto notes = notes_for(report_of({process(9, 2 * kGiB, 0)}));
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0].kind, NoteKind::kReservationOnly);
  EXPECT_TRUE(contains(notes[0].text, "RSS 0 B"));
}

// ---- shared_heavy ------------------------------------------------------------------------------

TEST(AnalyzeNotes, SharedHeavyWhenRssFarAbovePss) {
  ProcessSnapshot p = process(4243, 512 * kMiB, 96 * kMiB);
  p.memory.pss_bytes = 24 * kMiB;
  auto notes = notes_for(report_of({p}));
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0].kind, NoteKind::kSharedHeavy);
  EXPECT_EQ(notes[0].pid, 4243);
  EXPECT_TRUE(contains(notes[0].text, "RSS 96.0 MiB"));
  EXPECT_TRUE(contains(notes[0].text, "includes 72.0 MiB of pages shared"));
  EXPECT_TRUE(contains(notes[0].text, "(PSS) is 24.0 MiB"));
}

TEST(AnalyzeNotes, NoSharedNoteForSmallDifferenceOrUnknownPss) {
  ProcessSnapshot small = process(1, 100 * kMiB, 10 * kMiB);
  small.memory.pss_bytes = 9 * kMiB;
  EXPECT_TRUE(notes_of_kind(notes_for(report_of({small})), NoteKind::kSharedHeavy).empty());
  // 2x, but only 8 MiB shared: under the 16 MiB floor.
  ProcessSnapshot tiny = process(1, 100 * kMiB, 16 * kMiB);
  tiny.memory.pss_bytes = 8 * kMiB;
  EXPECT_TRUE(notes_of_kind(notes_for(report_of({tiny})), NoteKind::kSharedHeavy).empty());
  // 40 MiB shared, but RSS only 1.4x PSS.
  ProcessSnapshot ratio = process(1, 400 * kMiB, 140 * kMiB);
  ratio.memory.pss_bytes = 100 * kMiB;
  EXPECT_TRUE(notes_of_kind(notes_for(report_of({ratio})), NoteKind::kSharedHeavy).empty());
  // PSS not measured (no smaps access).
  ProcessSnapshot unknown = process(1, 400 * kMiB, 96 * kMiB);
  EXPECT_TRUE(notes_of_kind(notes_for(report_of({unknown})), NoteKind::kSharedHeavy).empty());
}

// ---- near_limit --------------------------------------------------------------------------------

InspectReport with_cgroup(uint64_t current, std::optional<uint64_t> max) {
  InspectReport report = report_of({process(555, 200 * kMiB, 90 * kMiB)});
  model::CgroupSummary cgroup;
  cgroup.version = 2;
  cgroup.path = "/user.slice/app.service";
  cgroup.memory_current_bytes = current;
  cgroup.memory_max_bytes = max;
  report.system.cgroup = cgroup;
  return report;
}

TEST(AnalyzeNotes, NearCgroupLimit) {
  auto notes = notes_for(with_cgroup(95 * kMiB, 100 * kMiB));
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0].kind, NoteKind::kNearLimit);
  EXPECT_EQ(notes[0].pid, 555);  // the first inspected process
  EXPECT_TRUE(contains(notes[0].text, "/user.slice/app.service"));
  EXPECT_TRUE(contains(notes[0].text, "uses 95.0 MiB of its 100 MiB limit (95%)"));
}

TEST(AnalyzeNotes, NotNearCgroupLimit) {
  EXPECT_TRUE(notes_for(with_cgroup(50 * kMiB, 100 * kMiB)).empty());
  EXPECT_TRUE(notes_for(with_cgroup(89 * kMiB, 100 * kMiB)).empty());
  EXPECT_TRUE(notes_for(with_cgroup(95 * kMiB, std::nullopt)).empty());  // unlimited
  EXPECT_TRUE(notes_for(with_cgroup(0, 0)).empty());
}

TEST(AnalyzeNotes, AtTheLimitBoundary) {
  EXPECT_EQ(notes_of_kind(notes_for(with_cgroup(90 * kMiB, 100 * kMiB)), NoteKind::kNearLimit).size(), 1u);
  EXPECT_EQ(notes_of_kind(notes_for(with_cgroup(120 * kMiB, 100 * kMiB)), NoteKind::kNearLimit).size(), 1u);
}

TEST(AnalyzeNotes, LowSystemMemory) {
  InspectReport report = report_of({process(1, 100 * kMiB, 10 * kMiB)});
  report.system.mem_total_bytes = 16 * kGiB;
  report.system.mem_available_bytes = 800 * kMiB;  // 4.9%
  auto notes = notes_for(report);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0].kind, NoteKind::kNearLimit);
  EXPECT_EQ(notes[0].pid, 0);  // about the system
  EXPECT_TRUE(contains(notes[0].text, "only 800 MiB available of 16.0 GiB (5%)"));
}

TEST(AnalyzeNotes, EnoughSystemMemory) {
  InspectReport report = report_of({process(1, 100 * kMiB, 10 * kMiB)});
  report.system.mem_total_bytes = 16 * kGiB;
  report.system.mem_available_bytes = 8 * kGiB;
  EXPECT_TRUE(notes_for(report).empty());
  report.system.mem_available_bytes.reset();  // kernel before 3.14
  EXPECT_TRUE(notes_for(report).empty());
}

TEST(AnalyzeNotes, SystemNoteWithoutProcesses) {
  InspectReport report;
  report.system.mem_total_bytes = 16 * kGiB;
  report.system.mem_available_bytes = 1 * kGiB;
  auto notes = notes_for(report);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0].pid, 0);
}

// ---- swap_in_use, gpu_mappings, partial_access -------------------------------------------------

TEST(AnalyzeNotes, SwapInUse) {
  ProcessSnapshot p = process(31, 200 * kMiB, 90 * kMiB);
  p.memory.swap_bytes = 5 * kMiB;
  auto notes = notes_for(report_of({p}));
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0].kind, NoteKind::kSwapInUse);
  EXPECT_EQ(notes[0].pid, 31);
  EXPECT_TRUE(contains(notes[0].text, "5.00 MiB of this process is swapped out"));
  EXPECT_TRUE(contains(notes[0].text, "RSS 90.0 MiB"));

  p.memory.swap_bytes = 0;
  EXPECT_TRUE(notes_for(report_of({p})).empty());
}

TEST(AnalyzeNotes, GpuMappings) {
  ProcessSnapshot p = process(32, 200 * kMiB, 90 * kMiB);
  model::RegionTotals gpu;
  gpu.category = RegionCategory::kGpu;
  gpu.count = 3;
  gpu.vsz_bytes = 64 * kMiB;
  gpu.rss_bytes = 12 * kMiB;
  p.regions.push_back(gpu);
  auto notes = notes_for(report_of({p}));
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0].kind, NoteKind::kGpuMappings);
  EXPECT_EQ(notes[0].pid, 32);
  EXPECT_TRUE(contains(notes[0].text, "3 GPU driver mappings span 64.0 MiB of address space"));
  EXPECT_TRUE(contains(notes[0].text, "(12.0 MiB resident in host RAM)"));

  p.regions[0].count = 1;
  notes = notes_for(report_of({p}));
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_TRUE(contains(notes[0].text, "1 GPU driver mapping span"));
}

TEST(AnalyzeNotes, NoGpuNoteWithoutGpuRegions) {
  ProcessSnapshot p = process(32, 200 * kMiB, 90 * kMiB);
  model::RegionTotals file;
  file.category = RegionCategory::kFile;
  file.count = 10;
  p.regions.push_back(file);
  EXPECT_TRUE(notes_for(report_of({p})).empty());
}

TEST(AnalyzeNotes, PartialAccess) {
  ProcessSnapshot p = process(77, 200 * kMiB, 90 * kMiB);
  p.uid = 1001;
  p.unreadable = {"smaps_rollup", "smaps", "fd"};
  auto notes = notes_for(report_of({p}));
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0].kind, NoteKind::kPartialAccess);
  EXPECT_EQ(notes[0].pid, 77);
  EXPECT_TRUE(contains(notes[0].text, "Could not read smaps_rollup, smaps, fd of pid 77 (owned by uid 1001)"));
  EXPECT_TRUE(contains(notes[0].text, "/proc/77/status"));
  EXPECT_TRUE(contains(notes[0].text, "CAP_SYS_PTRACE"));
}

// ---- several notes at once ---------------------------------------------------------------------

TEST(AnalyzeNotes, EveryProcessGetsItsOwnNotesInAFixedOrder) {
  ProcessSnapshot root = process(100, 8 * kGiB, 64 * kMiB);
  root.memory.pss_bytes = 20 * kMiB;  // 64 >= 1.5 * 20 and 44 MiB shared: shared_heavy too
  root.memory.swap_bytes = 1 * kMiB;
  ProcessSnapshot child = process(101, 100 * kMiB, 10 * kMiB);
  child.unreadable = {"smaps"};
  InspectReport report = report_of({root, child});
  report.system.mem_total_bytes = 10 * kGiB;
  report.system.mem_available_bytes = 512 * kMiB;

  auto notes = notes_for(report);
  ASSERT_EQ(notes.size(), 5u);
  EXPECT_EQ(notes[0].kind, NoteKind::kReservationOnly);
  EXPECT_EQ(notes[0].pid, 100);
  EXPECT_EQ(notes[1].kind, NoteKind::kSharedHeavy);
  EXPECT_EQ(notes[1].pid, 100);
  EXPECT_EQ(notes[2].kind, NoteKind::kSwapInUse);
  EXPECT_EQ(notes[2].pid, 100);
  EXPECT_EQ(notes[3].kind, NoteKind::kPartialAccess);
  EXPECT_EQ(notes[3].pid, 101);
  EXPECT_EQ(notes[4].kind, NoteKind::kNearLimit);
  EXPECT_EQ(notes[4].pid, 0);
}

TEST(AnalyzeNotes, QuietReportHasNoNotes) {
  InspectReport report = report_of({process(1, 300 * kMiB, 120 * kMiB)});
  report.processes[0].memory.pss_bytes = 110 * kMiB;
  report.system.mem_total_bytes = 16 * kGiB;
  report.system.mem_available_bytes = 12 * kGiB;
  EXPECT_TRUE(notes_for(report).empty());
}

}  // namespace
}  // namespace memdx::analyze
