// memdx trace --sample-bytes: Poisson sampling of allocations, scaled back by the report. The
// estimates must land near the exact figures of an unsampled trace of the same program.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "trace_integration/trace_support.h"

namespace memdx::test {
namespace {

class TraceSamplingTest : public TraceTest {
 protected:
  // The heap entry of memdx_tracee_counts traced with `options`; empty when that failed.
  json traced_heap(const std::string& name, const std::vector<std::string>& options) {
    std::string recording = path(name);
    std::vector<std::string> argv = {memdx_path(), "trace", "-o", recording};
    argv.insert(argv.end(), options.begin(), options.end());
    argv.push_back("--");
    argv.push_back(tracee_path("counts"));
    Finished run = run_for(argv);
    EXPECT_EQ(run.exit_code, 0) << run.err;
    Finished report = run_for({memdx_path(), "report", recording, "--json", recording + ".json"});
    EXPECT_EQ(report.exit_code, 0) << report.err;
    std::ifstream file(recording + ".json");
    json verdict = json::parse(file, nullptr, false);
    if (verdict.is_discarded() || verdict["heap"].size() != 1) return json::object();
    return verdict["heap"][0];
  }
};

double relative_error(uint64_t estimate, uint64_t exact) {
  return std::fabs(static_cast<double>(estimate) - static_cast<double>(exact)) / static_cast<double>(exact);
}

// About 3,000 samples of 3 MB: the estimates' standard error is a few percent, so a 25 %
// bound fails only on a biased estimator (e.g. unscaled samples: off by a factor of ~100).
TEST_F(TraceSamplingTest, EstimatesAreNearTheExactFigures) {
  json exact = traced_heap("exact.memdx", {});
  json sampled = traced_heap("sampled.memdx", {"--sample-bytes", "1024"});
  ASSERT_FALSE(exact.empty());
  ASSERT_FALSE(sampled.empty());
  EXPECT_EQ(sampled["sample_bytes"], 1024);
  EXPECT_LT(relative_error(sampled["allocated_bytes"], exact["allocated_bytes"]), 0.25)
      << sampled["allocated_bytes"] << " vs " << exact["allocated_bytes"];
  EXPECT_LT(relative_error(sampled["allocations"], exact["allocations"]), 0.25)
      << sampled["allocations"] << " vs " << exact["allocations"];
  EXPECT_LT(relative_error(sampled["final_live_bytes"], exact["final_live_bytes"]), 0.25)
      << sampled["final_live_bytes"] << " vs " << exact["final_live_bytes"];
  SiteSums peak_exact = site_sums(exact, "peak_blocks");
  SiteSums peak_sampled = site_sums(sampled, "peak_blocks");
  EXPECT_LT(relative_error(peak_sampled.allocated_bytes, peak_exact.allocated_bytes), 0.25);
  // Every block the program frees is freed in the sampled trace too: no sampled block leaks.
  EXPECT_EQ(site_sums(sampled, "temporary_blocks").final_live_bytes, 0u);
}

}  // namespace
}  // namespace memdx::test
