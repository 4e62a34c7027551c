// The last N records of something a program keeps observing (request latencies, queue depths,
// its own memory), in memory that stops growing once N are held: a ring buffer, not a log.
//
//   memdx::BoundedHistory<memdx::MetricsRecord> history(600);  // ten minutes at 1 Hz
//   history.push({now_unix_ms, {{"latency_ms", 12.5}, {"queue_depth", 3}}});
//   serve(memdx::to_json(history));  // {"schema":"memdx.history/1","records":[...]}
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "memdx/error.h"
#include "memdx/export.h"

namespace memdx {

// Keeps the newest capacity() records pushed; each push beyond that replaces the oldest.
// Thread-safe: every member function takes one internal mutex. Not copyable or movable.
template <class T>
class BoundedHistory {
 public:
  // Throws memdx::Error(kInvalidArgument) when capacity is 0. Memory for the records is taken as
  // they come, not up front.
  explicit BoundedHistory(size_t capacity) : capacity_(capacity) {
    if (capacity_ == 0) throw Error(ErrorKind::kInvalidArgument, "a history needs a capacity of at least 1");
  }
  BoundedHistory(const BoundedHistory&) = delete;
  BoundedHistory& operator=(const BoundedHistory&) = delete;

  void push(T record) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (ring_.size() < capacity_) {
      ring_.push_back(std::move(record));
    } else {
      ring_[oldest_] = std::move(record);
      oldest_ = (oldest_ + 1) % capacity_;
    }
    ++total_pushed_;
  }

  // Records held: min(total_pushed(), capacity()).
  size_t size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return ring_.size();
  }
  size_t capacity() const { return capacity_; }

  // A copy of the records held, oldest first.
  std::vector<T> snapshot() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<T> records;
    records.reserve(ring_.size());
    for (size_t i = 0; i < ring_.size(); ++i) records.push_back(ring_[(oldest_ + i) % ring_.size()]);
    return records;
  }

  // Every record ever pushed, the ones no longer held included.
  uint64_t total_pushed() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return total_pushed_;
  }

 private:
  const size_t capacity_;
  mutable std::mutex mutex_;
  std::vector<T> ring_;
  size_t oldest_ = 0;  // where the oldest record is once the ring is full (0 until then)
  uint64_t total_pushed_ = 0;
};

// One observation of a model server (or any program): named values at one time.
struct MetricsRecord {
  int64_t t_unix_ms = 0;                               // milliseconds since the Unix epoch
  std::vector<std::pair<std::string, double>> values;  // e.g. {"latency_ms", 12.5}
};

// The records as JSON, in their order:
//   {"schema":"memdx.history/1","records":[{"t_unix_ms":1700000000000,"values":{"latency_ms":12.5}}]}
// Each record's values become one object, in the order given; a name given twice keeps its last
// value. NaN and infinities become null. Names are written as UTF-8; a name that is not valid
// UTF-8 has its invalid bytes replaced by U+FFFD. Safe to call from any thread.
MEMDX_API std::string to_json(const std::vector<MetricsRecord>& records);

// to_json() of the history's snapshot(), oldest first.
inline std::string to_json(const BoundedHistory<MetricsRecord>& history) {
  return to_json(history.snapshot());
}

}  // namespace memdx
