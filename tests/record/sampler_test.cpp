// The sampler's smaps_rollup pacing, on this very process: read every tick by default, and, with
// a cost factor, not again until that many times its last read's duration has passed.
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

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

TEST(Sampler, AnIdleProcessRefreshesItsRssOftenAndItsPssRarely) {
  proc::ProcFs fs;
  SamplerOptions options;
  options.idle_refresh_ms = 1000;
  options.idle_rollup_refresh_ms = 60'000;
  Sampler sampler(fs, options);
  // The same activity at every tick: the process has not run since its last read.
  ProcessTreeTracker::Activity still{1, 2, 3, 4, 1};
  ActivityLookup idle = [&still](pid_t) { return still; };
  std::vector<model::ProcessSample> first = sampler.sample({::getpid()}, 0, idle);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_TRUE(first[0].pss_bytes.has_value());
  EXPECT_TRUE(sampler.sample({::getpid()}, 500, idle)[0].pss_bytes.has_value()) << "idle: the sample is kept";
  EXPECT_TRUE(sampler.reused_last_tick(::getpid()));

  std::vector<model::ProcessSample> refreshed = sampler.sample({::getpid()}, 2000, idle);
  ASSERT_EQ(refreshed.size(), 1u);
  EXPECT_FALSE(sampler.reused_last_tick(::getpid())) << "its status is re-read after idle_refresh_ms";
  EXPECT_GT(refreshed[0].rss_bytes, 0u);
  EXPECT_FALSE(refreshed[0].pss_bytes.has_value()) << "the rollup of an idle process was read again within a minute";

  EXPECT_TRUE(sampler.sample({::getpid()}, 61'000, idle)[0].pss_bytes.has_value())
      << "after idle_rollup_refresh_ms the rollup is due again";

  // A process that ran gets its rollup at every full read.
  ProcessTreeTracker::Activity running = still;
  ActivityLookup busy = [&running](pid_t) {
    ++running.cpu_ns;
    return running;
  };
  EXPECT_TRUE(sampler.sample({::getpid()}, 62'000, busy)[0].pss_bytes.has_value());
  EXPECT_TRUE(sampler.sample({::getpid()}, 63'000, busy)[0].pss_bytes.has_value());
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(Sampler, AnIdleProcessKeptWithoutAPssGetsOneAtALaterTick) {
  // A proc root of one process (this one's status) whose smaps_rollup cannot be read at first.
  std::filesystem::path root = std::filesystem::temp_directory_path() / ("memdx-sampler-" + std::to_string(::getpid()));
  std::filesystem::create_directories(root / "4242");
  std::ofstream(root / "4242" / "status") << read_text("/proc/self/status");
  proc::ProcFs fs(root.string());
  SamplerOptions options;
  options.idle_refresh_ms = 600'000;
  Sampler sampler(fs, options);
  ProcessTreeTracker::Activity still{1, 2, 3, 4, 1};
  ActivityLookup idle = [&still](pid_t) { return still; };

  std::vector<model::ProcessSample> first = sampler.sample({4242}, 0, idle);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_FALSE(first[0].pss_bytes.has_value());
  ASSERT_EQ(sampler.last_rollup_errors().size(), 1u) << "the failed rollup read is reported";
  EXPECT_NE(sampler.last_rollup_errors()[0].path.find("smaps_rollup"), std::string::npos);

  std::ofstream(root / "4242" / "smaps_rollup") << read_text("/proc/self/smaps_rollup");
  std::vector<model::ProcessSample> second = sampler.sample({4242}, 15'000, idle);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_TRUE(sampler.reused_last_tick(4242)) << "idle: its status is not read again";
  EXPECT_TRUE(second[0].pss_bytes.has_value()) << "kept without a PSS, and never given one while idle";
  EXPECT_TRUE(sampler.last_rollup_errors().empty());
  EXPECT_TRUE(sampler.sample({4242}, 30'000, idle)[0].pss_bytes.has_value()) << "the PSS is kept from then on";
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace memdx::record
