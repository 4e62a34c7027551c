// A least-recently-used cache of fixed capacity: a workload whose memory is bounded however long
// it runs, since every insertion past the capacity evicts the oldest entry.
#pragma once

#include <cstddef>
#include <list>
#include <string>
#include <unordered_map>
#include <utility>

namespace workload {

class LruCache {
 public:
  explicit LruCache(size_t capacity) : capacity_(capacity) {}

  void put(int key, std::string value) {
    auto found = index_.find(key);
    if (found != index_.end()) {
      order_.erase(found->second);
      index_.erase(found);
    }
    order_.emplace_front(key, std::move(value));
    index_[key] = order_.begin();
    if (order_.size() > capacity_) {
      index_.erase(order_.back().first);
      order_.pop_back();
    }
  }

  size_t size() const { return order_.size(); }

 private:
  size_t capacity_;
  std::list<std::pair<int, std::string>> order_;
  std::unordered_map<int, std::list<std::pair<int, std::string>>::iterator> index_;
};

// One iteration of churn: `count` new keys, each with a 256-byte value.
inline void churn(LruCache& cache, int& next_key, int count = 1000) {
  for (int i = 0; i < count; ++i) cache.put(next_key++, std::string(256, 'v'));
}

}  // namespace workload
