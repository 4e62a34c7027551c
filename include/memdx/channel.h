// A queue between threads that never holds more than `capacity` items: what a producer does
// when the consumer falls behind is a policy chosen up front (wait, lose the oldest, lose the
// newest, or refuse), never unbounded growth. For message buffers, log and metric pipelines,
// work queues.
//
//   memdx::BoundedChannel<Message> channel(1024, memdx::Overflow::kDropOldest);
//   channel.push(std::move(message));                   // producer
//   while (std::optional<Message> m = channel.pop()) ...  // consumer, until close()
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <utility>

#include "memdx/error.h"

namespace memdx {

// What push() does when the channel is full.
enum class Overflow {
  kBlock,       // waits for room (push_for: at most its timeout)
  kDropOldest,  // drops the oldest queued item to make room: the newest data wins (live views)
  kDropNewest,  // drops the item being pushed: the data already queued wins (losses expected)
  kReject,      // refuses the item: push() returns false and the caller decides (back-pressure)
};

struct ChannelStats {
  uint64_t pushed = 0;          // items that entered the channel
  uint64_t popped = 0;          // items taken out
  uint64_t dropped_oldest = 0;  // queued items dropped by kDropOldest
  uint64_t dropped_newest = 0;  // pushed items dropped by kDropNewest
  uint64_t rejected = 0;        // pushed items refused by kReject, or by kBlock's push_for timing out
  size_t high_water = 0;        // the most items queued at once
};

// Multi-producer, multi-consumer, first in first out. Thread-safe: one mutex, a condition
// variable for room and one for items. Items pushed to a closed channel are neither counted nor
// kept. Not copyable or movable; destroying it while a thread waits on it is undefined.
template <class T>
class BoundedChannel {
 public:
  // Throws memdx::Error(kInvalidArgument) when capacity is 0.
  BoundedChannel(size_t capacity, Overflow policy) : capacity_(capacity), policy_(policy) {
    if (capacity_ == 0) throw Error(ErrorKind::kInvalidArgument, "a channel needs a capacity of at least 1");
  }
  BoundedChannel(const BoundedChannel&) = delete;
  BoundedChannel& operator=(const BoundedChannel&) = delete;

  // Queues `item` at the back, or applies the policy when the channel is full. Returns whether
  // the item is now queued: false when the channel is closed (kBlock: also when it closes while
  // waiting), when kDropNewest dropped it, or when kReject refused it. kDropOldest returns true.
  bool push(T item) { return push_until(std::move(item), std::nullopt); }

  // push() whose kBlock wait ends after `timeout` (then false, counted as rejected). Under the
  // other policies it never waits and is push().
  bool push_for(T item, std::chrono::milliseconds timeout) {
    return push_until(std::move(item), std::chrono::steady_clock::now() + timeout);
  }

  // The oldest item, without waiting; nullopt when empty.
  std::optional<T> try_pop() {
    std::unique_lock<std::mutex> lock(mutex_);
    return take(lock);
  }

  // The oldest item, waiting for one at most `timeout`; nullopt at the timeout, or when the
  // channel is closed and empty.
  std::optional<T> pop_for(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    ++waiting_poppers_;
    not_empty_.wait_for(lock, timeout, [this] { return !items_.empty() || closed_; });
    --waiting_poppers_;
    return take(lock);
  }

  // The oldest item, waiting as long as it takes; nullopt only once the channel is closed and
  // drained.
  std::optional<T> pop() {
    std::unique_lock<std::mutex> lock(mutex_);
    ++waiting_poppers_;
    not_empty_.wait(lock, [this] { return !items_.empty() || closed_; });
    --waiting_poppers_;
    return take(lock);
  }

  size_t size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return items_.size();
  }
  size_t capacity() const { return capacity_; }
  Overflow policy() const { return policy_; }

  ChannelStats stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

  // No more pushes: every waiting and later push returns false; poppers take what is queued,
  // then get nullopt. Wakes every waiter. Idempotent.
  void close() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closed_ = true;
    }
    not_full_.notify_all();
    not_empty_.notify_all();
  }

  bool closed() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return closed_;
  }

 private:
  using Deadline = std::optional<std::chrono::steady_clock::time_point>;

  bool push_until(T item, Deadline deadline) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (closed_) return false;
    if (items_.size() >= capacity_) {
      switch (policy_) {
        case Overflow::kBlock:
          if (!wait_for_room(lock, deadline)) return false;
          break;
        case Overflow::kDropOldest:
          items_.pop_front();
          ++stats_.dropped_oldest;
          break;
        case Overflow::kDropNewest:
          ++stats_.dropped_newest;
          return false;
        case Overflow::kReject:
          ++stats_.rejected;
          return false;
      }
    }
    items_.push_back(std::move(item));
    ++stats_.pushed;
    if (items_.size() > stats_.high_water) stats_.high_water = items_.size();
    bool wake = waiting_poppers_ > 0;
    lock.unlock();
    // Outside the lock, so that the woken consumer does not wake into a held mutex; and only
    // when someone waits (a waiter counts itself under the lock before it waits).
    if (wake) not_empty_.notify_one();
    return true;
  }

  // Whether there is room (and the channel open) by the deadline.
  bool wait_for_room(std::unique_lock<std::mutex>& lock, Deadline deadline) {
    auto room = [this] { return items_.size() < capacity_ || closed_; };
    ++waiting_pushers_;
    bool ready = true;
    if (deadline) {
      ready = not_full_.wait_until(lock, *deadline, room);
    } else {
      not_full_.wait(lock, room);
    }
    --waiting_pushers_;
    if (!ready) ++stats_.rejected;
    return ready && !closed_;
  }

  std::optional<T> take(std::unique_lock<std::mutex>& lock) {
    if (items_.empty()) return std::nullopt;
    std::optional<T> item(std::move(items_.front()));
    items_.pop_front();
    ++stats_.popped;
    bool wake = waiting_pushers_ > 0;
    lock.unlock();
    if (wake) not_full_.notify_one();
    return item;
  }

  const size_t capacity_;
  const Overflow policy_;
  mutable std::mutex mutex_;
  std::condition_variable not_full_;
  std::condition_variable not_empty_;
  std::deque<T> items_;
  bool closed_ = false;
  size_t waiting_pushers_ = 0;
  size_t waiting_poppers_ = 0;
  ChannelStats stats_;
};

}  // namespace memdx
