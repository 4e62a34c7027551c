// The injected tracer's two lock-free tables, compiled into the test as the tracer compiles them:
// the stack table (a stack's frames go out once, under one id) and the sampled-address set of
// --sample-bytes. Both are process-wide, as in a traced program: each test uses hashes and
// addresses of its own, and the test that fills the stack table comes last.
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "trace/preload/real.h"
#include "trace/preload/sampled_set.h"
#include "trace/preload/stack_table.h"

namespace memdx::trace {
namespace {

// The tables map their memory with the real mmap, which the tracer finds at start-up.
class RealFunctions : public ::testing::Environment {
 public:
  void SetUp() override { resolve_real_functions(); }
};
const auto* const kRealFunctions = ::testing::AddGlobalTestEnvironment(new RealFunctions);

StackLookup lookup(uint64_t hash) {
  bool became_full = false;
  StackLookup found = lookup_stack(hash, &became_full);
  EXPECT_FALSE(became_full);
  return found;
}

// Hashes as hash_stack makes them, from a test's own frames.
uint64_t stack_hash(uintptr_t test, uintptr_t n) {
  const uintptr_t frames[] = {0x401000 + test, 0x7f0000001000 + n, 0x7f0000002000 + n * 16};
  return hash_stack(frames, 3);
}

TEST(StackTable, AStackIsDefinedOnceAndKeepsItsId) {
  StackLookup first = lookup(stack_hash(1, 1));
  EXPECT_TRUE(first.define);
  for (int i = 0; i < 3; ++i) {
    StackLookup again = lookup(stack_hash(1, 1));
    EXPECT_FALSE(again.define);
    EXPECT_EQ(again.id, first.id);
  }
  StackLookup other = lookup(stack_hash(1, 2));
  EXPECT_TRUE(other.define);
  EXPECT_NE(other.id, first.id);
}

TEST(StackTable, TheHashTellsFramesAndDepthApart) {
  const uintptr_t frames[] = {1, 2, 3, 4};
  const uintptr_t swapped[] = {2, 1, 3, 4};
  EXPECT_EQ(hash_stack(frames, 4), hash_stack(frames, 4));
  EXPECT_NE(hash_stack(frames, 4), hash_stack(swapped, 4));
  EXPECT_NE(hash_stack(frames, 3), hash_stack(frames, 4));
  EXPECT_NE(hash_stack(frames, 0), 0u);  // 0 marks an empty slot
}

TEST(StackTable, ANewStreamDefinesEveryStackAgainUnderItsId) {
  StackLookup before = lookup(stack_hash(2, 1));
  ASSERT_TRUE(before.define);
  stack_table_new_stream();  // a forked child
  StackLookup in_child = lookup(stack_hash(2, 1));
  EXPECT_TRUE(in_child.define);
  EXPECT_EQ(in_child.id, before.id);
  StackLookup again = lookup(stack_hash(2, 1));
  EXPECT_FALSE(again.define);
  EXPECT_EQ(again.id, before.id);
}

TEST(StackTable, ANewEpochGivesEqualAddressesANewId) {
  StackLookup before = lookup(stack_hash(3, 1));
  ASSERT_TRUE(before.define);
  stack_table_new_epoch();  // a library was unloaded: the same addresses may be other code now
  StackLookup after = lookup(stack_hash(3, 1));
  EXPECT_TRUE(after.define);
  EXPECT_NE(after.id, before.id);
  EXPECT_FALSE(lookup(stack_hash(3, 1)).define);
}

// Eight threads look up the same 4,000 stacks at once. Whatever the interleaving: an id is
// defined by one lookup only; a stack looked up without defining always has the same id, and
// that id was defined for that stack.
TEST(StackTable, ThreadsAgreeOnIds) {
  constexpr int kThreads = 8;
  constexpr uint64_t kStacks = 4000;
  struct Seen {
    uint64_t hash;
    StackLookup lookup;
  };
  std::vector<std::vector<Seen>> seen(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 3; ++round) {
        for (uint64_t n = 0; n < kStacks; ++n) {
          uint64_t hash = stack_hash(4, (n * 7 + static_cast<uint64_t>(t)) % kStacks);
          bool became_full = false;
          seen[t].push_back({hash, lookup_stack(hash, &became_full)});
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::map<uint32_t, uint64_t> defined;  // id -> the stack it was defined for
  std::map<uint64_t, std::set<uint32_t>> reused;
  for (const auto& thread : seen) {
    for (const Seen& s : thread) {
      if (s.lookup.define) {
        EXPECT_TRUE(defined.emplace(s.lookup.id, s.hash).second) << "id " << s.lookup.id << " defined twice";
      } else {
        reused[s.hash].insert(s.lookup.id);
      }
    }
  }
  EXPECT_EQ(reused.size(), kStacks);
  for (const auto& [hash, ids] : reused) {
    ASSERT_EQ(ids.size(), 1u);
    auto definition = defined.find(*ids.begin());
    ASSERT_NE(definition, defined.end());
    EXPECT_EQ(definition->second, hash);
  }
}

TEST(SampledSet, AnAddressIsRemovedOnce) {
  int block = 0;
  EXPECT_FALSE(sampled_set_erase(&block));  // never sampled
  EXPECT_TRUE(sampled_set_insert(&block));
  EXPECT_TRUE(sampled_set_erase(&block));
  EXPECT_FALSE(sampled_set_erase(&block));
  EXPECT_GT(sampled_set_bytes(), 0u);
}

// A long run samples millions of blocks, a few live at a time: freed slots are reused, the set
// never fills with them.
TEST(SampledSet, MillionsOfShortLivedSamplesFit) {
  for (uintptr_t n = 0; n < 3'000'000; ++n) {
    const auto* address = reinterpret_cast<const void*>(0x100000000000 + n * 48);
    ASSERT_TRUE(sampled_set_insert(address)) << n;
    ASSERT_TRUE(sampled_set_erase(address)) << n;
  }
}

// At most 131,072 sampled blocks live at once (half the slots): the next is not sampled, and
// there is room again once one is freed.
TEST(SampledSet, PastHalfFullNewSamplesAreRefused) {
  constexpr uintptr_t kCapacity = 131072;
  auto address = [](uintptr_t n) { return reinterpret_cast<const void*>(0x200000000000 + n * 4096); };
  for (uintptr_t n = 0; n < kCapacity; ++n) ASSERT_TRUE(sampled_set_insert(address(n))) << n;
  EXPECT_FALSE(sampled_set_insert(address(kCapacity)));
  EXPECT_TRUE(sampled_set_erase(address(7)));
  EXPECT_TRUE(sampled_set_insert(address(kCapacity)));
  for (uintptr_t n = 0; n <= kCapacity; ++n) EXPECT_EQ(sampled_set_erase(address(n)), n != 7) << n;
}

TEST(SampledSet, ThreadsInsertAndEraseTheirOwnBlocks) {
  constexpr int kThreads = 4;
  std::vector<int> failures(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto address = [t](uintptr_t n) {
        return reinterpret_cast<const void*>(0x300000000000 + static_cast<uintptr_t>(t) * 0x10000000 + n * 32);
      };
      for (uintptr_t n = 0; n < 20000; ++n) failures[t] += !sampled_set_insert(address(n));
      for (uintptr_t n = 0; n < 20000; ++n) failures[t] += !sampled_set_erase(address(n));
      for (uintptr_t n = 0; n < 20000; ++n) failures[t] += sampled_set_erase(address(n));
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], 0) << "thread " << t;
}

// Last: fills the process-wide table. Half full (524,288 stacks) it takes no more, says so once,
// and gives every further stack a fresh id to define.
TEST(StackTable, AFullTableSaysSoOnceAndStillGivesIds) {
  int full_said = 0;
  uint64_t n = 0;
  StackLookup last{};
  for (; n < 600000 && full_said == 0; ++n) {
    bool became_full = false;
    last = lookup_stack(stack_hash(5, n), &became_full);
    full_said += became_full;
  }
  ASSERT_EQ(full_said, 1) << "after " << n << " stacks";
  EXPECT_TRUE(last.define);
  bool became_full = false;
  StackLookup next = lookup_stack(stack_hash(5, n + 1), &became_full);
  EXPECT_FALSE(became_full);
  EXPECT_TRUE(next.define);
  EXPECT_NE(next.id, last.id);
}

}  // namespace
}  // namespace memdx::trace
