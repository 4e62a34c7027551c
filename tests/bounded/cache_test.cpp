// memdx::ByteBudgetCache and share_of_available_memory() through the public library: eviction
// order and byte accounting with exact survivors, expiry, the governor's shrink_to from other
// threads, and the available-memory figure against /proc/meminfo read here.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <memdx/cache.h>

namespace {

using namespace std::chrono_literals;
using Cache = memdx::ByteBudgetCache<std::string, int>;

// The keys among `keys` that the cache holds. Each lookup is a get(): it counts in the stats
// and makes a present key the most recent, which the callers allow for.
std::set<std::string> held(Cache& cache, const std::vector<std::string>& keys) {
  std::set<std::string> present;
  for (const std::string& key : keys) {
    if (cache.get(key) != nullptr) present.insert(key);
  }
  return present;
}

memdx::ErrorKind kind_thrown(const std::function<void()>& call) {
  try {
    call();
  } catch (const memdx::Error& e) {
    EXPECT_NE(std::string(e.what()), "");
    return e.kind();
  }
  ADD_FAILURE() << "no memdx::Error thrown";
  return memdx::ErrorKind::kSystem;
}

TEST(ByteBudgetCache, EvictsLeastRecentlyUsedUntilTheBytesFit) {
  Cache cache(100);
  EXPECT_TRUE(cache.put("a", 1, 30));
  EXPECT_TRUE(cache.put("b", 2, 30));
  EXPECT_TRUE(cache.put("c", 3, 30));
  EXPECT_EQ(cache.size_bytes(), 90u);
  // "a" becomes the most recent: "b" is now the least recently used.
  ASSERT_NE(cache.get("a"), nullptr);
  EXPECT_EQ(*cache.get("a"), 1);
  // 90 + 50 = 140 > 100: "b" (30) goes, 110 still > 100: "c" (30) goes, 80 fits.
  EXPECT_TRUE(cache.put("d", 4, 50));
  EXPECT_EQ(cache.size_bytes(), 80u);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.stats().evictions, 2u);
  EXPECT_EQ(held(cache, {"a", "b", "c", "d"}), (std::set<std::string>{"a", "d"}));
  EXPECT_EQ(*cache.get("d"), 4);
}

TEST(ByteBudgetCache, ReplacingAKeyCountsOnlyItsNewBytes) {
  Cache cache(100);
  cache.put("a", 1, 40);
  cache.put("b", 2, 40);
  EXPECT_TRUE(cache.put("a", 10, 10));  // a is now the most recent, 10 bytes
  EXPECT_EQ(cache.size_bytes(), 50u);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(*cache.get("a"), 10);
  // Growing "a" to 70 with "b" (40) held: 110 > 100 evicts "b", the least recent; "a" stays.
  ASSERT_NE(cache.get("a"), nullptr);
  EXPECT_TRUE(cache.put("a", 11, 70));
  EXPECT_EQ(cache.size_bytes(), 70u);
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.stats().evictions, 1u);
  EXPECT_EQ(*cache.get("a"), 11);
  EXPECT_EQ(cache.get("b"), nullptr);
}

TEST(ByteBudgetCache, RefusesAnEntryLargerThanTheBudgetAndDropsTheKey) {
  Cache cache(100);
  cache.put("a", 1, 60);
  cache.put("b", 2, 30);
  EXPECT_FALSE(cache.put("big", 3, 101));
  EXPECT_EQ(cache.size(), 2u) << "a refused entry evicts nothing";
  EXPECT_EQ(cache.size_bytes(), 90u);
  EXPECT_FALSE(cache.put("a", 4, 200));
  EXPECT_EQ(cache.get("a"), nullptr) << "the key's old value is not kept after a refused put";
  EXPECT_EQ(cache.size_bytes(), 30u);
  EXPECT_TRUE(cache.put("exact", 5, 70)) << "exactly the budget fits";
  EXPECT_EQ(cache.size_bytes(), 100u);
  memdx::CacheStats stats = cache.stats();
  EXPECT_EQ(stats.rejected, 2u);
  EXPECT_EQ(stats.evictions, 0u);
}

TEST(ByteBudgetCache, EraseAndClearFreeTheirBytes) {
  Cache cache(100);
  cache.put("a", 1, 10);
  cache.put("b", 2, 20);
  EXPECT_TRUE(cache.erase("a"));
  EXPECT_FALSE(cache.erase("a"));
  EXPECT_EQ(cache.size_bytes(), 20u);
  cache.clear();
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.size_bytes(), 0u);
  EXPECT_EQ(cache.get("b"), nullptr);
  memdx::CacheStats stats = cache.stats();
  EXPECT_EQ(stats.evictions, 0u);
  EXPECT_EQ(stats.misses, 1u);
}

TEST(ByteBudgetCache, ExpiredEntriesAreMissesAndEveryPutDropsThem) {
  Cache cache(100, memdx::CacheOptions{50ms});
  cache.put("old1", 1, 20);
  cache.put("old2", 2, 20);
  std::this_thread::sleep_for(200ms);
  // Looking "old1" up finds it expired: a miss, dropped. "old2" is held until a pass.
  EXPECT_EQ(cache.get("old1"), nullptr);
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.size_bytes(), 20u);
  // Each put is such a pass, over budget or not: "old2" goes, as an expiration.
  EXPECT_TRUE(cache.put("fresh", 3, 20));
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.size_bytes(), 20u);
  EXPECT_TRUE(cache.put("new", 4, 80));
  EXPECT_EQ(cache.size_bytes(), 100u);
  EXPECT_NE(cache.get("fresh"), nullptr);
  EXPECT_NE(cache.get("new"), nullptr);
  memdx::CacheStats stats = cache.stats();
  EXPECT_EQ(stats.expirations, 2u);
  EXPECT_EQ(stats.evictions, 0u);
  EXPECT_EQ(stats.misses, 1u);
  EXPECT_EQ(stats.hits, 2u);
}

// An entry used recently but put long ago goes before a live entry used less recently. Needs
// the expired entry looked up before its ttl and the shrink done before the other's: where the
// machine is too slow to keep those windows (hundreds of ms), the test says so and skips.
TEST(ByteBudgetCache, ExpiredEntriesGoBeforeLiveOnesWhateverTheirRecency) {
  using Clock = std::chrono::steady_clock;
  Cache cache(100, memdx::CacheOptions{1000ms});
  Clock::time_point put_old = Clock::now();
  cache.put("old", 1, 20);
  std::this_thread::sleep_for(500ms);
  Clock::time_point put_live = Clock::now();
  cache.put("live", 2, 20);
  Clock::time_point looked_up = Clock::now();
  const int* old = cache.get("old");  // "old" is now the most recent, "live" the least
  if (looked_up - put_old >= 900ms) GTEST_SKIP() << "too slow to look \"old\" up before it expired";
  ASSERT_NE(old, nullptr);
  std::this_thread::sleep_until(put_old + 1250ms);
  EXPECT_EQ(cache.shrink_to(20), 20u);
  Clock::time_point shrunk = Clock::now();
  if (shrunk - put_live >= 1000ms) GTEST_SKIP() << "too slow to shrink before \"live\" expired";
  EXPECT_EQ(cache.size(), 1u);
  memdx::CacheStats stats = cache.stats();
  EXPECT_EQ(stats.expirations, 1u);
  EXPECT_EQ(stats.evictions, 0u);
  EXPECT_NE(cache.get("live"), nullptr);
}

TEST(ByteBudgetCache, ReplacingAnEntryRestartsItsTtl) {
  using Clock = std::chrono::steady_clock;
  Cache cache(100, memdx::CacheOptions{300ms});
  cache.put("a", 1, 10);
  std::this_thread::sleep_for(500ms);
  Clock::time_point replaced = Clock::now();
  cache.put("a", 2, 10);
  std::optional<int> value = cache.get_copy("a");
  if (Clock::now() - replaced >= 300ms) GTEST_SKIP() << "too slow to look the entry up before its ttl";
  EXPECT_EQ(value, 2);
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(cache.get_copy("a"), std::nullopt);
  EXPECT_EQ(cache.stats().expirations, 1u) << "only the replaced value's own expiry";
}

TEST(ByteBudgetCache, ANonPositiveTtlIsRefused) {
  EXPECT_EQ(kind_thrown([] { Cache cache(100, memdx::CacheOptions{0ms}); }), memdx::ErrorKind::kInvalidArgument);
  EXPECT_EQ(kind_thrown([] { Cache cache(100, memdx::CacheOptions{-5ms}); }), memdx::ErrorKind::kInvalidArgument);
}

TEST(ByteBudgetCache, ShrinkToEvictsLeastRecentAndReturnsTheBytesFreed) {
  Cache cache(100);
  cache.put("a", 1, 10);
  cache.put("b", 2, 20);
  cache.put("c", 3, 30);
  cache.put("d", 4, 40);
  ASSERT_NE(cache.get("a"), nullptr);   // order now, least recent first: b, c, d, a
  EXPECT_EQ(cache.shrink_to(50), 50u);  // b (20) and c (30) go: 50 left
  EXPECT_EQ(cache.size_bytes(), 50u);
  EXPECT_EQ(cache.shrink_to(50), 0u);
  EXPECT_EQ(cache.budget_bytes(), 100u) << "shrink_to leaves the budget alone";
  EXPECT_TRUE(cache.put("e", 5, 50));
  EXPECT_EQ(cache.size_bytes(), 100u);
  EXPECT_EQ(cache.shrink_to(0), 100u);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.stats().evictions, 5u);
}

TEST(ByteBudgetCache, ALowerBudgetEvictsAtOnce) {
  Cache cache(100);
  cache.put("a", 1, 40);
  cache.put("b", 2, 40);
  cache.set_budget(50);
  EXPECT_EQ(cache.budget_bytes(), 50u);
  EXPECT_EQ(cache.size_bytes(), 40u);
  EXPECT_EQ(held(cache, {"a", "b"}), (std::set<std::string>{"b"}));
  EXPECT_FALSE(cache.put("c", 3, 60)) << "the new budget refuses what the old one took";
  cache.set_budget(200);
  EXPECT_TRUE(cache.put("c", 3, 160));
  EXPECT_EQ(cache.size_bytes(), 200u);
}

TEST(ByteBudgetCache, StatsCountEveryLookupExactly) {
  Cache cache(30);
  cache.put("a", 1, 10);
  cache.put("b", 2, 10);
  cache.get("a");            // hit
  cache.get("zzz");          // miss
  cache.get_copy("b");       // hit
  cache.get_copy("yyy");     // miss
  cache.put("c", 3, 10);     // fits: 30
  cache.put("d", 4, 10);     // evicts "a" (least recent: b was read after a)
  cache.put("huge", 5, 31);  // rejected
  cache.get("a");            // miss
  memdx::CacheStats stats = cache.stats();
  EXPECT_EQ(stats.hits, 2u);
  EXPECT_EQ(stats.misses, 3u);
  EXPECT_EQ(stats.evictions, 1u);
  EXPECT_EQ(stats.expirations, 0u);
  EXPECT_EQ(stats.rejected, 1u);
}

TEST(ByteBudgetCache, HoldsMoveOnlyValuesAndCustomHashes) {
  struct Hash {
    size_t operator()(int key) const { return static_cast<size_t>(key) * 2654435761u; }
  };
  memdx::ByteBudgetCache<int, std::unique_ptr<std::string>, Hash> cache(8);
  EXPECT_TRUE(cache.put(1, std::make_unique<std::string>("one"), 4));
  EXPECT_TRUE(cache.put(2, std::make_unique<std::string>("two"), 4));
  EXPECT_TRUE(cache.put(3, std::make_unique<std::string>("three"), 4));
  const std::unique_ptr<std::string>* three = cache.get(3);
  ASSERT_NE(three, nullptr);
  EXPECT_EQ(**three, "three");
  EXPECT_EQ(cache.get(1), nullptr);
}

// Several threads put, get (by copy) and shrink at once: the budget holds whenever anyone
// looks, and the counters add up to what the threads did.
TEST(ByteBudgetCache, ConcurrentUseKeepsTheBudgetAndTheCounts) {
  constexpr uint64_t kBudget = 4096;
  constexpr int kThreads = 4;
  constexpr int kOperations = 20000;
  memdx::ByteBudgetCache<int, std::vector<int>> cache(kBudget);
  std::atomic<uint64_t> gets{0};
  std::atomic<uint64_t> refused{0};
  std::atomic<bool> over_budget{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      uint32_t state = 12345u + static_cast<uint32_t>(t);
      for (int i = 0; i < kOperations; ++i) {
        state = state * 1664525u + 1013904223u;
        int key = static_cast<int>((state >> 8) % 512);
        uint64_t bytes = (state >> 20) % 600;  // up to 599: some puts need several evictions
        switch (state % 4) {
          case 0:
            if (!cache.put(key, std::vector<int>(4, key), bytes)) refused.fetch_add(1);
            break;
          case 1:
          case 2: {
            std::optional<std::vector<int>> value = cache.get_copy(key);
            gets.fetch_add(1);
            if (value && (value->size() != 4 || (*value)[0] != key)) ADD_FAILURE() << "wrong value for " << key;
            break;
          }
          default:
            if (i % 64 == 3) cache.shrink_to(kBudget / 4);
            break;
        }
        if (cache.size_bytes() > kBudget) over_budget = true;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_FALSE(over_budget.load());
  EXPECT_LE(cache.size_bytes(), kBudget);
  memdx::CacheStats stats = cache.stats();
  EXPECT_EQ(stats.hits + stats.misses, gets.load());
  EXPECT_GT(stats.hits, 0u);
  EXPECT_GT(stats.evictions, 0u);
  EXPECT_EQ(stats.rejected, refused.load());
  EXPECT_EQ(stats.rejected, 0u) << "no entry is larger than the budget";
}

std::optional<uint64_t> read_number(const std::string& path) {
  std::ifstream file(path);
  std::string text;
  if (!(file >> text) || text == "max") return std::nullopt;
  return std::stoull(text);
}

uint64_t mem_available_bytes_from_proc() {
  std::ifstream meminfo("/proc/meminfo");
  std::string line;
  while (std::getline(meminfo, line)) {
    std::istringstream fields(line);
    std::string name;
    uint64_t kib = 0;
    fields >> name >> kib;
    if (name == "MemAvailable:") return kib * 1024;
  }
  return 0;
}

// What this process's memory cgroup still allows, read here independently of memdx: the
// directory named in /proc/self/cgroup under the usual mount points (or the mount point itself,
// inside a cgroup namespace). nullopt when there is no limit.
std::optional<uint64_t> cgroup_room_bytes() {
  std::ifstream cgroup("/proc/self/cgroup");
  std::string line;
  while (std::getline(cgroup, line)) {
    size_t first = line.find(':');
    size_t second = line.find(':', first + 1);
    std::string controllers = line.substr(first + 1, second - first - 1);
    std::string path = line.substr(second + 1);
    std::vector<std::pair<std::string, std::string>> files;  // limit, usage
    if (line.compare(0, 3, "0::") == 0) {
      for (const std::string& dir : {"/sys/fs/cgroup" + path, std::string("/sys/fs/cgroup")}) {
        files.emplace_back(dir + "/memory.max", dir + "/memory.current");
      }
    } else if (("," + controllers + ",").find(",memory,") != std::string::npos) {
      for (const std::string& dir : {"/sys/fs/cgroup/memory" + path, std::string("/sys/fs/cgroup/memory")}) {
        files.emplace_back(dir + "/memory.limit_in_bytes", dir + "/memory.usage_in_bytes");
      }
    }
    for (const auto& [limit_path, usage_path] : files) {
      std::optional<uint64_t> usage = read_number(usage_path);
      if (!usage) continue;
      std::optional<uint64_t> limit = read_number(limit_path);
      // cgroup v1 says "no limit" with a number near 2^63.
      if (!limit || *limit >= (uint64_t{1} << 62)) return std::nullopt;
      return *limit > *usage ? *limit - *usage : 0;
    }
  }
  return std::nullopt;
}

// Free memory moves while the test runs (other processes, this one): the test's own reading and
// memdx's agree within 10 %.
TEST(ShareOfAvailableMemory, IsTheShareOfWhatMemAvailableAndTheCgroupAllow) {
  uint64_t expected = mem_available_bytes_from_proc();
  ASSERT_GT(expected, 0u);
  if (std::optional<uint64_t> room = cgroup_room_bytes()) expected = std::min(expected, *room);
  double whole = static_cast<double>(memdx::share_of_available_memory(1.0));
  double quarter = static_cast<double>(memdx::share_of_available_memory(0.25));
  EXPECT_NEAR(whole, static_cast<double>(expected), static_cast<double>(expected) * 0.1);
  EXPECT_NEAR(quarter, static_cast<double>(expected) * 0.25, static_cast<double>(expected) * 0.025);
}

TEST(ShareOfAvailableMemory, RefusesSharesOutsideZeroToOne) {
  for (double share : {0.0, -0.5, 1.0001, 2.0, std::nan(""), std::numeric_limits<double>::infinity()}) {
    EXPECT_EQ(kind_thrown([share] { memdx::share_of_available_memory(share); }), memdx::ErrorKind::kInvalidArgument)
        << share;
  }
}

}  // namespace
