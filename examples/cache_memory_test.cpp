// Memory assertions in a program's own tests (memdx/testing.h): a cache with a byte budget stays
// bounded however many keys go through it; a cache that never evicts does not, and the failure
// names the line that keeps the memory. Built with -g and linked with memdx::testing (libmemdx and
// the allocation recorder) so that the failure can say which code holds the growth.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <unordered_map>

#include <memdx/cache.h>
#include <memdx/testing.h>

namespace {

// What the failure names: the function that keeps the memory where the recorder sees allocations,
// else only the numbers.
#if MEMDX_EXAMPLE_HAS_RECORDER
constexpr const char* kNamedInTheFailure = "UnboundedCache::put";
#else
constexpr const char* kNamedInTheFailure = "per iteration";
#endif

// What the cache keeps: a rendered page of about 4 KiB.
std::string render_page(uint64_t key) {
  return std::string(4096, static_cast<char>('a' + key % 26));
}

// The cache someone sized by entry count once, and then forgot: nothing ever leaves it.
class UnboundedCache {
 public:
  [[gnu::noinline]] void put(uint64_t key, std::string page) { pages_[key] = std::move(page); }

 private:
  std::unordered_map<uint64_t, std::string> pages_;
};

TEST(Cache, AByteBudgetKeepsItBounded) {
  memdx::ByteBudgetCache<uint64_t, std::string> cache(256 * 1024);  // 64 pages
  uint64_t key = 0;
  EXPECT_MEMORY_BOUNDED(for (int i = 0; i < 50; ++i) {
    std::string page = render_page(key);
    cache.put(key++, std::move(page), 4096);
  });
  EXPECT_LE(cache.size_bytes(), 256u * 1024);
  EXPECT_GT(cache.stats().evictions, 0u);
}

// The assertion catches the unbounded one; the test shows it by expecting the failure.
TEST(Cache, WithoutABudgetItGrowsAndTheFailureSaysWhere) {
  UnboundedCache cache;
  uint64_t key = 0;
  EXPECT_NONFATAL_FAILURE(EXPECT_MEMORY_BOUNDED(for (int i = 0; i < 50; ++i, ++key) cache.put(key, render_page(key));),
                          kNamedInTheFailure);
}

}  // namespace
