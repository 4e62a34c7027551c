// The tracer's bootstrap arena: blocks handed out before the real allocator is known. realloc of
// such a block (its size unknown) copies what the new block asks for, but never past the arena:
// it once copied `size` bytes from a 64 KiB static array, an out-of-bounds read in the target.
#include <gtest/gtest.h>

#include <cstdint>

#include "trace/preload/real.h"

namespace memdx::trace {
namespace {

TEST(BootstrapArena, BlocksAreRecognisedAndAligned) {
  void* block = bootstrap_alloc(100, 64);
  ASSERT_NE(block, nullptr);
  EXPECT_TRUE(is_bootstrap_block(block));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(block) % 64, 0u);
  int outside = 0;
  EXPECT_FALSE(is_bootstrap_block(&outside));
}

TEST(BootstrapArena, ACopyOutOfABlockNeverReadsPastTheArena) {
  void* block = bootstrap_alloc(32, 16);
  ASSERT_NE(block, nullptr);
  EXPECT_EQ(bootstrap_bytes_after(block, 32), 32u);
  // Growing to 1 MiB: the arena (64 KiB) ends long before.
  size_t readable = bootstrap_bytes_after(block, size_t{1} << 20);
  EXPECT_LE(readable, size_t{64} * 1024);
  EXPECT_TRUE(is_bootstrap_block(static_cast<char*>(block) + readable - 1));
  EXPECT_FALSE(is_bootstrap_block(static_cast<char*>(block) + readable));
  int outside = 0;
  EXPECT_EQ(bootstrap_bytes_after(&outside, 100), 0u);
}

TEST(BootstrapArena, AnExhaustedArenaSaysSo) {
  EXPECT_EQ(bootstrap_alloc(size_t{1} << 20, 16), nullptr);
}

}  // namespace
}  // namespace memdx::trace
