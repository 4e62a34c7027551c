// memdx/testing.h linked with libmemdx alone (memdx::memdx, no recorder), as in the sanitizer
// build: growth is still found and measured, and the failure says how to see the code behind it.
#include <string>
#include <vector>

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <memdx/testing.h>

#include "lru_cache.h"

namespace workload {

std::vector<std::vector<char>> history;
void leak_into_history() {
  history.emplace_back(64 * 1024, 'h');
}

volatile char temporary_sink = 0;
void use_temporary(size_t bytes) {
  std::vector<char> temporary(bytes, 't');
  temporary_sink = temporary[bytes / 2];
}

}  // namespace workload

namespace {

class NoRecorderTest : public ::testing::Test {
 protected:
  void TearDown() override {
    workload::history.clear();
    workload::history.shrink_to_fit();
  }
};

bool under_sanitizer(const memdx::testing::BoundedResult& result) {
  return result.source == memdx::testing::HeapSource::kSanitizerAllocator;
}

TEST_F(NoRecorderTest, ALeakIsFoundAndTheMessageSaysHowToSeeTheSites) {
  memdx::testing::BoundedResult result = memdx::testing::check_bounded(workload::leak_into_history);
  ASSERT_TRUE(result.growing) << memdx::testing::describe(result);
  EXPECT_GE(result.slope_bytes_per_iteration, 64 * 1024);
  EXPECT_LE(result.slope_bytes_per_iteration, 80 * 1024);
  EXPECT_TRUE(result.sites.empty());
  if (under_sanitizer(result)) {
    EXPECT_EQ(result.sites_status, memdx::testing::SitesStatus::kOtherAllocator);
    EXPECT_NONFATAL_FAILURE(EXPECT_MEMORY_BOUNDED(workload::leak_into_history()), "malloc is not glibc's");
  } else {
    EXPECT_EQ(result.source, memdx::testing::HeapSource::kGlibcMallinfo);
    EXPECT_EQ(result.sites_status, memdx::testing::SitesStatus::kNoRecorder);
    EXPECT_NONFATAL_FAILURE(EXPECT_MEMORY_BOUNDED(workload::leak_into_history()),
                            "link memdx::testing to see which code holds it");
  }
}

TEST_F(NoRecorderTest, AnLruCacheUnderChurnIsBounded) {
  workload::LruCache cache(256);
  int next_key = 0;
  memdx::testing::BoundedResult result = memdx::testing::check_bounded([&] { workload::churn(cache, next_key); });
  EXPECT_FALSE(result.growing) << memdx::testing::describe(result);
  EXPECT_MEMORY_BOUNDED(workload::churn(cache, next_key));
}

TEST_F(NoRecorderTest, ThePeakIsTheResidentHighWaterMark) {
  memdx::testing::PeakResult small = memdx::testing::check_peak([] { workload::use_temporary(1 << 20); });
  EXPECT_EQ(small.source, memdx::testing::PeakSource::kRssHighWater);
  EXPECT_GT(small.before_bytes, 0u);
  EXPECT_PEAK_BELOW(8 << 20, workload::use_temporary(1 << 20));
  memdx::testing::PeakResult large = memdx::testing::check_peak([] { workload::use_temporary(64 << 20); });
  EXPECT_GE(large.peak_above_before_bytes, 60u << 20);
  EXPECT_NONFATAL_FAILURE(EXPECT_PEAK_BELOW(8 << 20, workload::use_temporary(64 << 20)), "memory peak too high");
}

}  // namespace
