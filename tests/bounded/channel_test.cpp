// memdx::BoundedChannel with real threads: each overflow policy's contents and counters, blocking
// pushes and pops released by the other side or by close(), and many producers and consumers.
// Waits that would hang on a bug are bounded (pop_for, push_for, futures with a deadline).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <memdx/channel.h>

namespace {

using namespace std::chrono_literals;
using memdx::BoundedChannel;
using memdx::Overflow;

std::vector<int> drain(BoundedChannel<int>& channel) {
  std::vector<int> items;
  while (std::optional<int> item = channel.try_pop()) items.push_back(*item);
  return items;
}

// Pushes 1..5 into a channel of 3.
std::vector<bool> push_five(BoundedChannel<int>& channel) {
  std::vector<bool> results;
  for (int i = 1; i <= 5; ++i) results.push_back(channel.push(i));
  return results;
}

TEST(BoundedChannel, DropOldestKeepsTheNewest) {
  BoundedChannel<int> channel(3, Overflow::kDropOldest);
  EXPECT_EQ(push_five(channel), (std::vector<bool>{true, true, true, true, true}));
  EXPECT_EQ(channel.size(), 3u);
  EXPECT_EQ(drain(channel), (std::vector<int>{3, 4, 5}));
  memdx::ChannelStats stats = channel.stats();
  EXPECT_EQ(stats.pushed, 5u);
  EXPECT_EQ(stats.popped, 3u);
  EXPECT_EQ(stats.dropped_oldest, 2u);
  EXPECT_EQ(stats.dropped_newest, 0u);
  EXPECT_EQ(stats.rejected, 0u);
  EXPECT_EQ(stats.high_water, 3u);
}

TEST(BoundedChannel, DropNewestKeepsTheOldest) {
  BoundedChannel<int> channel(3, Overflow::kDropNewest);
  EXPECT_EQ(push_five(channel), (std::vector<bool>{true, true, true, false, false}));
  EXPECT_EQ(drain(channel), (std::vector<int>{1, 2, 3}));
  memdx::ChannelStats stats = channel.stats();
  EXPECT_EQ(stats.pushed, 3u);
  EXPECT_EQ(stats.popped, 3u);
  EXPECT_EQ(stats.dropped_oldest, 0u);
  EXPECT_EQ(stats.dropped_newest, 2u);
  EXPECT_EQ(stats.rejected, 0u);
  EXPECT_EQ(stats.high_water, 3u);
}

TEST(BoundedChannel, RejectRefusesWhenFullAndTakesAgainWhenThereIsRoom) {
  BoundedChannel<int> channel(3, Overflow::kReject);
  EXPECT_EQ(push_five(channel), (std::vector<bool>{true, true, true, false, false}));
  EXPECT_EQ(channel.try_pop(), 1);
  EXPECT_TRUE(channel.push(6));
  EXPECT_EQ(drain(channel), (std::vector<int>{2, 3, 6}));
  memdx::ChannelStats stats = channel.stats();
  EXPECT_EQ(stats.pushed, 4u);
  EXPECT_EQ(stats.popped, 4u);
  EXPECT_EQ(stats.dropped_newest, 0u);
  EXPECT_EQ(stats.rejected, 2u);
  EXPECT_EQ(stats.high_water, 3u);
}

TEST(BoundedChannel, BlockWithATimeoutGivesUpWhenNobodyPops) {
  BoundedChannel<int> channel(2, Overflow::kBlock);
  EXPECT_TRUE(channel.push(1));
  EXPECT_TRUE(channel.push(2));
  EXPECT_FALSE(channel.push_for(3, 20ms));
  EXPECT_EQ(drain(channel), (std::vector<int>{1, 2}));
  memdx::ChannelStats stats = channel.stats();
  EXPECT_EQ(stats.pushed, 2u);
  EXPECT_EQ(stats.rejected, 1u);
  EXPECT_EQ(stats.high_water, 2u);
}

TEST(BoundedChannel, ABlockedPushGoesThroughWhenAnItemIsPopped) {
  BoundedChannel<int> channel(1, Overflow::kBlock);
  ASSERT_TRUE(channel.push(1));
  std::atomic<bool> pushed{false};
  std::thread producer([&] {
    pushed = channel.push(2);  // blocks: the channel is full
  });
  // The producer is (or soon will be) waiting; nothing it does can make the item appear early.
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(channel.size(), 1u);
  EXPECT_EQ(channel.pop_for(5s), 1);
  EXPECT_EQ(channel.pop_for(5s), 2) << "the blocked push delivered its item";
  producer.join();
  EXPECT_TRUE(pushed.load());
  memdx::ChannelStats stats = channel.stats();
  EXPECT_EQ(stats.pushed, 2u);
  EXPECT_EQ(stats.popped, 2u);
  EXPECT_EQ(stats.high_water, 1u);
}

TEST(BoundedChannel, PopForTimesOutOnAnEmptyChannel) {
  BoundedChannel<std::string> channel(4, Overflow::kBlock);
  EXPECT_EQ(channel.pop_for(10ms), std::nullopt);
  EXPECT_EQ(channel.try_pop(), std::nullopt);
  EXPECT_EQ(channel.stats().popped, 0u);
}

TEST(BoundedChannel, CloseWakesBlockedPushersWithFalse) {
  BoundedChannel<int> channel(1, Overflow::kBlock);
  ASSERT_TRUE(channel.push(0));
  std::vector<std::future<bool>> pushers;
  for (int i = 1; i <= 3; ++i) {
    // A long push_for rather than push: a close() that wakes nobody fails the test instead of
    // hanging it.
    pushers.push_back(std::async(std::launch::async, [&channel, i] { return channel.push_for(i, 30s); }));
  }
  std::this_thread::sleep_for(50ms);
  channel.close();
  for (std::future<bool>& pusher : pushers) {
    ASSERT_EQ(pusher.wait_for(10s), std::future_status::ready) << "close() did not wake a pusher";
    EXPECT_FALSE(pusher.get());
  }
  EXPECT_TRUE(channel.closed());
  EXPECT_FALSE(channel.push(9));
  EXPECT_EQ(channel.pop(), 0) << "what was queued before close() is still delivered";
  EXPECT_EQ(channel.pop(), std::nullopt);
  EXPECT_EQ(channel.stats().pushed, 1u);
  EXPECT_EQ(channel.stats().rejected, 0u) << "no push_for timed out";
}

TEST(BoundedChannel, CloseWakesBlockedPoppersAfterTheyDrain) {
  BoundedChannel<int> channel(4, Overflow::kBlock);
  std::vector<std::future<std::optional<int>>> poppers;
  for (int i = 0; i < 3; ++i) {
    poppers.push_back(std::async(std::launch::async, [&channel] { return channel.pop_for(30s); }));
  }
  ASSERT_TRUE(channel.push(7));
  std::this_thread::sleep_for(50ms);
  channel.close();
  std::vector<std::optional<int>> results;
  for (auto& popper : poppers) {
    ASSERT_EQ(popper.wait_for(10s), std::future_status::ready) << "close() did not wake a popper";
    results.push_back(popper.get());
  }
  EXPECT_EQ(std::count(results.begin(), results.end(), std::optional<int>(7)), 1);
  EXPECT_EQ(std::count(results.begin(), results.end(), std::nullopt), 2);
  EXPECT_EQ(channel.pop_for(10ms), std::nullopt);
}

TEST(BoundedChannel, ACapacityOfZeroIsRefused) {
  try {
    BoundedChannel<int> channel(0, Overflow::kBlock);
    ADD_FAILURE() << "no memdx::Error thrown";
  } catch (const memdx::Error& e) {
    EXPECT_EQ(e.kind(), memdx::ErrorKind::kInvalidArgument);
  }
}

// Four producers push 20,000 distinct numbers each through a channel of 16; four consumers take
// them until close(). Every number arrives exactly once, each producer's in its own order.
TEST(BoundedChannel, ManyProducersAndConsumersDeliverEveryItemOnce) {
  constexpr int kProducers = 4;
  constexpr int kConsumers = 4;
  constexpr int kPerProducer = 20000;
  BoundedChannel<int> channel(16, Overflow::kBlock);
  std::vector<std::vector<int>> received(kConsumers);
  std::vector<std::thread> consumers;
  for (int c = 0; c < kConsumers; ++c) {
    consumers.emplace_back([&channel, &received, c] {
      while (std::optional<int> item = channel.pop_for(30s)) received[c].push_back(*item);
    });
  }
  std::vector<std::thread> producers;
  std::atomic<int> refused{0};
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&channel, &refused, p] {
      for (int i = 0; i < kPerProducer; ++i) {
        if (!channel.push(p * kPerProducer + i)) refused.fetch_add(1);
      }
    });
  }
  for (std::thread& producer : producers) producer.join();
  channel.close();
  for (std::thread& consumer : consumers) consumer.join();

  EXPECT_EQ(refused.load(), 0);
  std::vector<int> all;
  for (const std::vector<int>& items : received) {
    // One consumer sees each producer's numbers in increasing order (FIFO).
    std::vector<int> last(kProducers, -1);
    for (int item : items) {
      EXPECT_GT(item, last[item / kPerProducer]);
      last[item / kPerProducer] = item;
    }
    all.insert(all.end(), items.begin(), items.end());
  }
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), static_cast<size_t>(kProducers * kPerProducer));
  for (int i = 0; i < kProducers * kPerProducer; ++i) ASSERT_EQ(all[i], i);
  memdx::ChannelStats stats = channel.stats();
  EXPECT_EQ(stats.pushed, static_cast<uint64_t>(kProducers * kPerProducer));
  EXPECT_EQ(stats.popped, stats.pushed);
  EXPECT_LE(stats.high_water, 16u);
  EXPECT_EQ(stats.dropped_oldest + stats.dropped_newest + stats.rejected, 0u);
}

// Under kDropOldest with a slow consumer, nothing is lost silently: what was pushed is either
// popped or counted as dropped.
TEST(BoundedChannel, DropOldestAccountsForEveryItemUnderConcurrency) {
  BoundedChannel<int> channel(8, Overflow::kDropOldest);
  std::atomic<uint64_t> taken{0};
  std::thread consumer([&] {
    while (channel.pop_for(30s)) taken.fetch_add(1);
  });
  std::vector<std::thread> producers;
  for (int p = 0; p < 3; ++p) {
    producers.emplace_back([&channel] {
      for (int i = 0; i < 20000; ++i) EXPECT_TRUE(channel.push(i));
    });
  }
  for (std::thread& producer : producers) producer.join();
  channel.close();
  consumer.join();
  memdx::ChannelStats stats = channel.stats();
  EXPECT_EQ(stats.pushed, 60000u);
  EXPECT_EQ(stats.popped, taken.load());
  EXPECT_EQ(stats.popped + stats.dropped_oldest, 60000u);
  EXPECT_LE(stats.high_water, 8u);
}

}  // namespace
