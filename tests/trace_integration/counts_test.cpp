// memdx trace on memdx_tracee_counts: 8 threads allocating at once through every allocation
// function, each site's counts and the process's totals and peak known exactly.
#include <gtest/gtest.h>

#include <algorithm>

#include "trace_integration/programs/counts_plan.h"
#include "trace_integration/trace_support.h"

namespace memdx::test {
namespace {

namespace plan = memdx::tracee::counts;

// What the runtime (libc, libstdc++, the loader, main's thread creation) may hold at the peak.
constexpr uint64_t kMaxRuntimeLiveBytes = 64 * 1024;

bool is_planned(const std::string& function) {
  return std::any_of(plan::kSites.begin(), plan::kSites.end(),
                     [&](const plan::SiteTotals& site) { return site.function == function; });
}

// libstdc++'s exception emergency pool (72704 bytes in GCC 12), allocated once at start-up
// by its own constructor: the runtime's, but too big for the bound above. It is named by its
// source (eh_alloc.cc) where libstdc++'s debug information is installed, else by the module.
bool is_exception_pool(const json& site) {
  std::string file = site["file"].get<std::string>();
  std::string function = site["function"].get<std::string>();
  bool named = file.size() >= 11 && file.compare(file.size() - 11, 11, "eh_alloc.cc") == 0;
  bool unnamed = function.rfind("libstdc++.so", 0) == 0;
  return (named || unnamed) && site["allocations"].get<uint64_t>() == 1;
}

using TraceCountsTest = TraceTest;

TEST_F(TraceCountsTest, EveryFunctionOfEightThreadsHasExactCounts) {
  Finished run = trace({tracee_path("counts")});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "done\n");
  json verdict = report();
  ASSERT_EQ(verdict["heap"].size(), 1u);
  const json& heap = verdict["heap"][0];
  EXPECT_EQ(heap["ended"], "exit");
  EXPECT_EQ(heap["sample_bytes"], 0);
  EXPECT_EQ(heap["unmatched_frees"], 0);
  for (const plan::SiteTotals& expected : plan::kSites) {
    SCOPED_TRACE(std::string(expected.function));
    SiteSums got = site_sums(heap, expected.function);
    EXPECT_EQ(got.allocations, expected.allocations);
    EXPECT_EQ(got.allocated_bytes, expected.allocated_bytes);
    EXPECT_EQ(got.final_live_bytes, expected.final_live_bytes);
    EXPECT_EQ(got.final_live_blocks, expected.final_live_blocks);
    EXPECT_EQ(got.files, std::set<std::string>{tracee_source("counts.cpp")});
    EXPECT_EQ(got.lines, marked_lines(tracee_source("counts.cpp"), expected.function));
  }
  EXPECT_EQ(site_sums(heap, "peak_blocks").peak_live_bytes, plan::kPeakSiteBytes);
}

// Totals minus the planned sites is exactly what the other sites (the runtime's) report, and
// the peak is the planned one plus at most what the runtime held.
TEST_F(TraceCountsTest, ProcessTotalsArePlannedPlusRuntime) {
  Finished run = trace({tracee_path("counts")});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  json verdict = report();
  ASSERT_EQ(verdict["heap"].size(), 1u);
  const json& heap = verdict["heap"][0];
  ASSERT_LT(heap["sites"].size(), 20u) << "the site list is cut at 20: the sums below need every site";
  SiteSums planned;
  SiteSums runtime;
  uint64_t runtime_bounded_peak_bytes = 0;
  for (const json& site : heap["sites"]) {
    if (is_planned(site["function"].get<std::string>())) {
      planned.add(site);
      continue;
    }
    runtime.add(site);
    if (!is_exception_pool(site)) runtime_bounded_peak_bytes += site["peak_live_bytes"].get<uint64_t>();
  }
  uint64_t planned_allocations = 0;
  uint64_t planned_bytes = 0;
  for (const plan::SiteTotals& site : plan::kSites) {
    planned_allocations += site.allocations;
    planned_bytes += site.allocated_bytes;
  }
  ASSERT_EQ(planned.allocations, planned_allocations);
  ASSERT_EQ(planned.allocated_bytes, planned_bytes);
  EXPECT_EQ(heap["allocations"].get<uint64_t>() - planned.allocations, runtime.allocations);
  EXPECT_EQ(heap["allocated_bytes"].get<uint64_t>() - planned.allocated_bytes, runtime.allocated_bytes);
  EXPECT_EQ(heap["final_live_bytes"].get<uint64_t>() - plan::kept_bytes(), runtime.final_live_bytes);
  EXPECT_EQ(heap["final_live_blocks"].get<uint64_t>() - planned.final_live_blocks, runtime.final_live_blocks);
  uint64_t peak = heap["peak_live_bytes"].get<uint64_t>();
  EXPECT_GE(peak, plan::kExpectedPeakBytes);
  EXPECT_LE(peak, plan::kExpectedPeakBytes + runtime.peak_live_bytes);
  EXPECT_LT(runtime_bounded_peak_bytes, kMaxRuntimeLiveBytes);
}

}  // namespace
}  // namespace memdx::test
