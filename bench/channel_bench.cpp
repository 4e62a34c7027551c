// memdx::BoundedChannel beside the queue most programs write by hand (std::mutex, std::deque,
// one condition variable, no bound), on the same work: a push and a pop on one thread, and
// items handed from one producer thread to one consumer thread.
#include <benchmark/benchmark.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include <memdx/channel.h>

namespace {

// The peer. close() and the nullopt at the end exist only so that the consumer thread can stop.
class MutexQueue {
 public:
  void push(uint64_t item) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      items_.push_back(item);
    }
    ready_.notify_one();
  }
  std::optional<uint64_t> try_pop() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (items_.empty()) return std::nullopt;
    uint64_t item = items_.front();
    items_.pop_front();
    return item;
  }
  std::optional<uint64_t> pop() {
    std::unique_lock<std::mutex> lock(mutex_);
    ready_.wait(lock, [this] { return !items_.empty() || closed_; });
    if (items_.empty()) return std::nullopt;
    uint64_t item = items_.front();
    items_.pop_front();
    return item;
  }
  void close() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closed_ = true;
    }
    ready_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<uint64_t> items_;
  bool closed_ = false;
};

void BM_ChannelPushPop(benchmark::State& state) {
  memdx::BoundedChannel<uint64_t> channel(1024, memdx::Overflow::kBlock);
  uint64_t i = 0;
  for (auto _ : state) {
    channel.push(i++);
    benchmark::DoNotOptimize(channel.try_pop());
  }
}
BENCHMARK(BM_ChannelPushPop);

void BM_MutexQueuePushPop(benchmark::State& state) {
  MutexQueue queue;
  uint64_t i = 0;
  for (auto _ : state) {
    queue.push(i++);
    benchmark::DoNotOptimize(queue.try_pop());
  }
}
BENCHMARK(BM_MutexQueuePushPop);

// A full channel of kDropOldest: each push drops the oldest item (a live view that nobody reads).
void BM_ChannelPushDroppingOldest(benchmark::State& state) {
  memdx::BoundedChannel<uint64_t> channel(1024, memdx::Overflow::kDropOldest);
  for (uint64_t i = 0; i < 1024; ++i) channel.push(i);
  uint64_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(channel.push(i++));
}
BENCHMARK(BM_ChannelPushDroppingOldest);

constexpr int kBatch = 1000;

// One iteration: the benchmark's thread pushes kBatch items and waits until a consumer thread
// has popped them all, so every item counted was delivered. items_per_second is the rate.
template <class Queue>
void handoff(benchmark::State& state, Queue& queue) {
  std::atomic<uint64_t> consumed{0};
  std::thread consumer([&] {
    while (queue.pop()) consumed.fetch_add(1, std::memory_order_release);
  });
  uint64_t produced = 0;
  for (auto _ : state) {
    for (int n = 0; n < kBatch; ++n) queue.push(produced++);
    while (consumed.load(std::memory_order_acquire) < produced) std::this_thread::yield();
  }
  queue.close();
  consumer.join();
  state.SetItemsProcessed(static_cast<int64_t>(produced));
}

void BM_ChannelHandoff(benchmark::State& state) {
  memdx::BoundedChannel<uint64_t> channel(static_cast<size_t>(state.range(0)), memdx::Overflow::kBlock);
  handoff(state, channel);
}
// 1024: the batch never fills it; 64: the producer waits for room.
BENCHMARK(BM_ChannelHandoff)->Arg(1024)->Arg(64)->UseRealTime();

void BM_MutexQueueHandoff(benchmark::State& state) {
  MutexQueue queue;
  handoff(state, queue);
}
BENCHMARK(BM_MutexQueueHandoff)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
