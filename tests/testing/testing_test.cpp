// memdx/testing.h with the allocation recorder linked (memdx::testing): bounded workloads pass,
// leaking ones fail and the failure names the function and file:line that holds the memory, the
// peak assertion tells a 1 MiB temporary from a 64 MiB one, and a bounded workload almost never
// fails (the false-failure count).
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <memdx/testing.h>

#include "lru_cache.h"

namespace workload {

std::vector<std::vector<char>> history;
// Keeps 64 KiB more on every call: a history nobody trims. Not inlined: GCC at -O3 may drop the
// record of an inlined call from the debug information, and the test is about naming this function.
// kHistoryLine is the line of its allocation, for the assertions on the message.
constexpr unsigned kHistoryLine = __LINE__ + 2;
[[gnu::noinline]] void leak_into_history() {
  history.emplace_back(64 * 1024, 'h');
}

struct Session {
  char payload[16 * 1024];
};
std::vector<std::unique_ptr<Session>> sessions;
// Allocates a session with new on every call; the caller keeps them all.
constexpr unsigned kSessionLine = __LINE__ + 2;
[[gnu::noinline]] Session* open_session() {
  auto* session = new Session();
  session->payload[0] = 1;
  return session;
}

// A vector refilled on every call: its capacity, once reached, is reused.
std::vector<int> scratch;
void refill_scratch() {
  scratch.clear();
  for (int i = 0; i < 4096; ++i) scratch.push_back(i);
}

volatile char temporary_sink = 0;
// Needs `bytes` of memory for a moment, written so that the pages are really used.
void use_temporary(size_t bytes) {
  std::vector<char> temporary(bytes, 't');
  temporary_sink = temporary[bytes / 2];
}

}  // namespace workload

namespace {

class TestingTest : public ::testing::Test {
 protected:
  void TearDown() override {
    workload::history.clear();
    workload::history.shrink_to_fit();
    workload::sessions.clear();
  }
};

std::string all_messages(const ::testing::TestPartResultArray& results) {
  std::string text;
  for (int i = 0; i < results.size(); ++i) text += std::string(results.GetTestPartResult(i).message()) + "\n";
  return text;
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

TEST_F(TestingTest, AnLruCacheUnderChurnIsBounded) {
  workload::LruCache cache(256);
  int next_key = 0;
  memdx::testing::BoundedResult result = memdx::testing::check_bounded([&] { workload::churn(cache, next_key); });
  EXPECT_FALSE(result.growing) << memdx::testing::describe(result);
  EXPECT_EQ(result.source, memdx::testing::HeapSource::kGlibcMallinfo);
  EXPECT_EQ(result.series_bytes.size(), 20u);
  EXPECT_EQ(result.sites_status, memdx::testing::SitesStatus::kNotGrowing);
  EXPECT_EQ(cache.size(), 256u);
  // The macro form, as a test would write it.
  EXPECT_MEMORY_BOUNDED(workload::churn(cache, next_key));
}

TEST_F(TestingTest, AVectorClearedEachIterationIsBounded) {
  memdx::testing::BoundedResult result = memdx::testing::check_bounded(workload::refill_scratch);
  EXPECT_FALSE(result.growing) << memdx::testing::describe(result);
  ASSERT_MEMORY_BOUNDED(workload::refill_scratch());
}

TEST_F(TestingTest, AGrowingHistoryFailsAndNamesTheFunctionThatHoldsIt) {
  memdx::testing::BoundedResult result = memdx::testing::check_bounded(workload::leak_into_history);
  ASSERT_TRUE(result.growing) << memdx::testing::describe(result);
  // 64 KiB of payload per call, plus glibc's chunk header and the history's own array.
  EXPECT_GE(result.slope_bytes_per_iteration, 64 * 1024);
  EXPECT_LE(result.slope_bytes_per_iteration, 80 * 1024);
  ASSERT_EQ(result.sites_status, memdx::testing::SitesStatus::kNamed);
  ASSERT_FALSE(result.sites.empty());
  const memdx::testing::GrowthSite& top = result.sites.front();
  EXPECT_EQ(top.site.function, "workload::leak_into_history()") << memdx::testing::describe(result);
  EXPECT_TRUE(ends_with(top.site.file, "tests/testing/testing_test.cpp")) << top.site.file;
  EXPECT_EQ(top.site.line, workload::kHistoryLine);
  // 20 measured calls of 64 KiB each stayed live, and the history's own array grew with them
  // (one block, reallocated as it doubles: a few hundred bytes).
  EXPECT_GE(top.growth_blocks, 20);
  EXPECT_LE(top.growth_blocks, 21);
  EXPECT_GE(top.growth_bytes, 20 * 64 * 1024);
  EXPECT_LE(top.growth_bytes, 20 * 64 * 1024 + 4096);
}

TEST_F(TestingTest, TheMacroFailureMessageNamesTheSiteWithFileAndLine) {
  ::testing::TestPartResultArray results;
  {
    ::testing::ScopedFakeTestPartResultReporter reporter(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &results);
    EXPECT_MEMORY_BOUNDED(workload::leak_into_history());
  }
  ASSERT_EQ(results.size(), 1);
  EXPECT_TRUE(results.GetTestPartResult(0).nonfatally_failed());
  std::string message = all_messages(results);
  std::printf("%s", message.c_str());  // what a user sees
  EXPECT_NE(message.find("memory is not bounded: workload::leak_into_history()"), std::string::npos) << message;
  EXPECT_NE(message.find(" per iteration"), std::string::npos) << message;
  EXPECT_NE(message.find("glibc heap (mallinfo2"), std::string::npos) << message;
  std::string site = "workload::leak_into_history() at ";
  std::string where = "tests/testing/testing_test.cpp:" + std::to_string(workload::kHistoryLine);
  size_t at = message.find(site);
  ASSERT_NE(at, std::string::npos) << message;
  EXPECT_NE(message.find(where, at), std::string::npos) << message;
}

TEST_F(TestingTest, SessionsLeakedThroughNewAreAttributedToTheFunctionThatCallsNew) {
  memdx::testing::BoundedResult result =
      memdx::testing::check_bounded([] { workload::sessions.emplace_back(workload::open_session()); });
  ASSERT_TRUE(result.growing) << memdx::testing::describe(result);
  ASSERT_FALSE(result.sites.empty()) << memdx::testing::describe(result);
  const memdx::testing::GrowthSite& top = result.sites.front();
  EXPECT_EQ(top.site.function, "workload::open_session()") << memdx::testing::describe(result);
  EXPECT_EQ(top.site.line, workload::kSessionLine);
  EXPECT_GE(top.growth_bytes, 20 * static_cast<int64_t>(sizeof(workload::Session)));
  EXPECT_EQ(top.growth_blocks, 20);
  // Its caller, the body's lambda in this test, comes next.
  ASSERT_FALSE(top.callers.empty());
  EXPECT_TRUE(ends_with(top.callers.front().file, "tests/testing/testing_test.cpp")) << top.callers.front().file;
  EXPECT_NONFATAL_FAILURE(EXPECT_MEMORY_BOUNDED(workload::sessions.emplace_back(workload::open_session())),
                          "workload::open_session() at ");
}

void assert_history_bounded() {
  ASSERT_MEMORY_BOUNDED(workload::leak_into_history());
}

TEST_F(TestingTest, TheAssertFormIsAFatalFailure) {
  EXPECT_FATAL_FAILURE(assert_history_bounded(), "workload::leak_into_history() at ");
}

TEST_F(TestingTest, ToleranceAboveTheGrowthPasses) {
  memdx::testing::BoundedOptions options;
  options.tolerance_bytes_per_iteration = uint64_t{1024} * 1024;
  EXPECT_MEMORY_BOUNDED_WITH(options, workload::leak_into_history());
  options.tolerance_bytes_per_iteration = 1024;
  options.iterations = 4;
  EXPECT_THROW(memdx::testing::check_bounded(workload::leak_into_history, options), memdx::Error);
}

TEST_F(TestingTest, ThePeakOfAOneMiBTemporaryIsBelowEightMiB) {
  memdx::testing::PeakResult result = memdx::testing::check_peak([] { workload::use_temporary(1 << 20); });
  EXPECT_EQ(result.source, memdx::testing::PeakSource::kRecorder);
  EXPECT_GE(result.peak_above_before_bytes, 1u << 20);
  EXPECT_LT(result.peak_above_before_bytes, 2u << 20);
  EXPECT_PEAK_BELOW(8 << 20, workload::use_temporary(1 << 20));
}

TEST_F(TestingTest, ThePeakOfA64MiBTemporaryFailsAnEightMiBLimit) {
  memdx::testing::PeakResult result = memdx::testing::check_peak([] { workload::use_temporary(64 << 20); });
  EXPECT_GE(result.peak_above_before_bytes, 64u << 20);
  EXPECT_NONFATAL_FAILURE(EXPECT_PEAK_BELOW(8 << 20, workload::use_temporary(64 << 20)), "memory peak too high");
}

// Four threads churning their own caches while the recorder records them all: no lost or double
// counted block (the check stays bounded), and a leak on another thread is still seen and named.
TEST_F(TestingTest, AllocationsOfOtherThreadsAreRecordedToo) {
  auto churn_on_threads = [] {
    std::vector<std::thread> threads;
    threads.reserve(4);
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([t] {
        workload::LruCache cache(64);
        int next_key = t * 1000000;
        workload::churn(cache, next_key, 500);
      });
    }
    for (std::thread& thread : threads) thread.join();
  };
  memdx::testing::BoundedResult bounded = memdx::testing::check_bounded(churn_on_threads);
  EXPECT_FALSE(bounded.growing) << memdx::testing::describe(bounded);
  memdx::testing::BoundedResult leaking =
      memdx::testing::check_bounded([] { std::thread(workload::leak_into_history).join(); });
  ASSERT_TRUE(leaking.growing) << memdx::testing::describe(leaking);
  ASSERT_FALSE(leaking.sites.empty());
  EXPECT_EQ(leaking.sites.front().site.function, "workload::leak_into_history()") << memdx::testing::describe(leaking);
}

// The false-failure rate of the default options on a bounded workload: 100 checks of the LRU
// cache under churn, at most one may call it growing.
TEST_F(TestingTest, FalseFailureRateOfABoundedWorkload) {
  workload::LruCache cache(256);
  int next_key = 0;
  int failures = 0;
  for (int run = 0; run < 100; ++run) {
    memdx::testing::BoundedResult result = memdx::testing::check_bounded([&] { workload::churn(cache, next_key); });
    if (result.growing) {
      ++failures;
      std::printf("false failure in run %d:\n%s", run, memdx::testing::describe(result).c_str());
    }
  }
  std::printf("false failures: %d of 100 checks of a bounded workload\n", failures);
  EXPECT_LE(failures, 1);
}

}  // namespace
