// The memory assertions from an installed memdx (find_package(memdx), memdx::testing): a bounded
// loop passes, and a leak fails with the function that keeps it named.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <memdx/testing.h>

namespace {

std::vector<std::string> g_kept;

[[gnu::noinline]] void keep_more() {
  g_kept.emplace_back(64 * 1024, 'k');
}

TEST(Installed, BoundedLoopPasses) {
  EXPECT_MEMORY_BOUNDED(std::vector<char> scratch(64 * 1024, 's'); scratch.clear());
}

TEST(Installed, LeakIsNamed) {
  EXPECT_NONFATAL_FAILURE(EXPECT_MEMORY_BOUNDED(keep_more()), "keep_more");
}

}  // namespace
