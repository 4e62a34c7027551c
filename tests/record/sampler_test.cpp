// The sampler's smaps_rollup pacing, on this very process: read every tick by default, and, with
// a cost factor, not again until that many times its last read's duration has passed.
#include <unistd.h>

#include <gtest/gtest.h>

#include "proc/procfs.h"
#include "record/sampler.h"

namespace memdx::record {
namespace {

TEST(Sampler, ReadsTheRollupEveryTickWithoutACostFactor) {
  proc::ProcFs fs;
  Sampler sampler(fs, SamplerOptions{});
  for (int64_t t_ms : {0, 1000, 2000}) {
    std::vector<model::ProcessSample> samples = sampler.sample({::getpid()}, t_ms);
    ASSERT_EQ(samples.size(), 1u);
    EXPECT_TRUE(samples[0].pss_bytes.has_value()) << t_ms;
    EXPECT_TRUE(samples[0].uss_bytes.has_value()) << t_ms;
    EXPECT_GT(*samples[0].uss_bytes, 0u);
    EXPECT_LE(*samples[0].uss_bytes, samples[0].rss_bytes);
  }
}

TEST(Sampler, ACostlyRollupWaitsItsShare) {
  proc::ProcFs fs;
  SamplerOptions options;
  // Any real read takes microseconds: times 10^9, it is not due again for over 16 minutes.
  options.rollup_cost_factor = 1e9;
  Sampler sampler(fs, options);
  std::vector<model::ProcessSample> first = sampler.sample({::getpid()}, 0);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_TRUE(first[0].pss_bytes.has_value());
  std::vector<model::ProcessSample> second = sampler.sample({::getpid()}, 60'000);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_FALSE(second[0].pss_bytes.has_value()) << "read again after a minute despite its cost";
  EXPECT_GT(second[0].rss_bytes, 0u);  // the cheap files are read every tick all the same
}

}  // namespace
}  // namespace memdx::record
