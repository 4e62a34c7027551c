// A cache bounded by bytes, not by entries: what a program keeps to avoid recomputing (parsed
// files, embeddings, rendered pages) stays under a budget it chooses, and a memory governor can
// take bytes back under pressure (shrink_to) from its own thread.
//
//   memdx::ByteBudgetCache<std::string, Document> cache(memdx::share_of_available_memory(0.1));
//   cache.put(path, std::move(document), document_bytes);
//   if (std::optional<Document> hit = cache.get_copy(path)) ...
//
// The caller says what each entry costs (`bytes`): the cache cannot know what a value holds on
// the heap. Eviction is least recently used first, in O(1) per entry.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "memdx/error.h"
#include "memdx/export.h"

namespace memdx {

struct CacheOptions {
  // Entries older than this (counted from their put) are misses: dropped when looked up, and
  // dropped before any live entry whenever the cache evicts. Unset: entries never expire.
  std::optional<std::chrono::milliseconds> ttl;
};

struct CacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;       // lookups of absent or expired keys
  uint64_t evictions = 0;    // live entries dropped to fit a put, set_budget or shrink_to
  uint64_t expirations = 0;  // entries dropped because they outlived the ttl
  uint64_t rejected = 0;     // puts of entries larger than the whole budget
};

// `share` (0 < share <= 1) of the memory this process can still get, in bytes: preflight's usable
// room (memdx/preflight.h), the lesser of MemAvailable (/proc/meminfo) and what the binding memory
// cgroup's memory.max or memory.high still allows (its own cgroup, or the ancestor that leaves
// less; its inactive page cache counts as room, since the kernel drops that before it refuses a
// charge). Read anew at each call: a figure of the moment, for sizing a budget. Safe to call from
// any thread.
// Throws memdx::Error: kInvalidArgument (share outside (0, 1]), kSystem (/proc/meminfo unreadable).
MEMDX_API uint64_t share_of_available_memory(double share);

// Least-recently-used cache of K -> V whose entries' declared sizes add up to at most
// budget_bytes(). Thread-safe: every member function takes one internal mutex, so a governor may
// call shrink_to() while other threads put and get. get() returns a pointer into the cache; see
// there for when that is safe. Not copyable or movable (the mutex).
template <class K, class V, class Hash = std::hash<K>>
class ByteBudgetCache {
 public:
  // Throws memdx::Error(kInvalidArgument) when options.ttl is zero or negative.
  explicit ByteBudgetCache(uint64_t budget_bytes, CacheOptions options = {})
      : budget_bytes_(budget_bytes), ttl_(options.ttl) {
    if (ttl_ && ttl_->count() <= 0) {
      throw Error(ErrorKind::kInvalidArgument,
                  "cache ttl must be positive, not " + std::to_string(ttl_->count()) + " ms");
    }
  }
  ByteBudgetCache(const ByteBudgetCache&) = delete;
  ByteBudgetCache& operator=(const ByteBudgetCache&) = delete;

  // Stores `value` under `key` as its most recent entry, costing `bytes`; a value already under
  // `key` is replaced (and its bytes no longer count). Then drops expired entries and evicts the
  // least recently used until the total fits the budget. An entry larger than the whole budget
  // is refused: returns false, counts as rejected, and removes what `key` held before (a stale
  // value is worse than none).
  bool put(const K& key, V value, uint64_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = index_.find(key);
    if (bytes > budget_bytes_) {
      ++stats_.rejected;
      if (found != index_.end()) remove(found);
      return false;
    }
    if (found != index_.end()) {
      replace(found->second, std::move(value), bytes);
    } else {
      insert(key, std::move(value), bytes);
    }
    fit_locked(budget_bytes_);
    return true;
  }

  // The value under `key`, now the most recent entry; nullptr when absent or expired.
  // The pointer is valid until the next call on this cache other than size(), size_bytes(),
  // budget_bytes() and stats(), by any thread: another thread's put, get or shrink_to may free the
  // value while the caller reads it. Use get() only where one thread owns the cache; where
  // several share it (a governor calling shrink_to included), use get_copy().
  const V* get(const K& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    Entry* entry = find_locked(key);
    return entry != nullptr ? &entry->value : nullptr;
  }

  // A copy of the value under `key` (made under the lock), now the most recent entry; nullopt
  // when absent or expired. Safe whoever else uses the cache. Every other caller waits while the
  // copy is made: for large values, store std::shared_ptr<const T>, whose copy is a reference.
  std::optional<V> get_copy(const K& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    Entry* entry = find_locked(key);
    if (entry == nullptr) return std::nullopt;
    return entry->value;
  }

  // Removes `key`; false when it was not there. Neither an eviction nor a miss.
  bool erase(const K& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = index_.find(key);
    if (found == index_.end()) return false;
    remove(found);
    return true;
  }

  // What the entries held now declare, expired ones not yet dropped included.
  uint64_t size_bytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return size_bytes_;
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return index_.size();
  }
  uint64_t budget_bytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return budget_bytes_;
  }

  // A new budget; a lower one evicts (expired entries first, then least recently used) at once.
  void set_budget(uint64_t budget_bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    budget_bytes_ = budget_bytes;
    fit_locked(budget_bytes_);
  }

  // Drops expired entries, then evicts least recently used ones, until size_bytes() <= bytes.
  // Returns the bytes freed. The budget stays as it was: later puts may fill it again. Meant for
  // a memory governor under pressure.
  uint64_t shrink_to(uint64_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    uint64_t before = size_bytes_;
    fit_locked(bytes);
    return before - size_bytes_;
  }

  CacheStats stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

  // Drops every entry; the stats are kept (and count nothing for it).
  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    index_.clear();
    by_age_.clear();
    lru_.clear();
    size_bytes_ = 0;
  }

 private:
  using Clock = std::chrono::steady_clock;
  struct Entry {
    K key;
    V value;
    uint64_t bytes;
  };
  using LruList = std::list<Entry>;
  // Entries in the order of their puts, with the time of each: with one ttl for all, the expired
  // ones are always a prefix of this list, so expiry never looks at an entry that is still fresh.
  // Only kept with a ttl: without one, no put reads the clock or allocates a second node, and an
  // entry is no larger than in a plain LRU.
  struct Age {
    typename LruList::iterator lru;
    Clock::time_point put_at;
  };
  using AgeList = std::list<Age>;
  struct Slot {
    typename LruList::iterator lru;
    typename AgeList::iterator age;
  };
  using Index = std::unordered_map<K, Slot, Hash>;

  // Only with a ttl.
  bool expired(const Age& age, Clock::time_point now) const { return now - age.put_at >= *ttl_; }

  Entry* find_locked(const K& key) {
    auto found = index_.find(key);
    if (found == index_.end()) {
      ++stats_.misses;
      return nullptr;
    }
    if (ttl_ && expired(*found->second.age, Clock::now())) {
      ++stats_.misses;
      ++stats_.expirations;
      remove(found);
      return nullptr;
    }
    ++stats_.hits;
    lru_.splice(lru_.begin(), lru_, found->second.lru);
    return &*found->second.lru;
  }

  void insert(const K& key, V value, uint64_t bytes) {
    // Every allocation before any change is kept, so that a bad_alloc leaves the cache as it was.
    auto age = ttl_ ? by_age_.insert(by_age_.end(), Age{lru_.end(), Clock::now()}) : by_age_.end();
    try {
      lru_.push_front(Entry{key, std::move(value), bytes});
      try {
        index_.emplace(key, Slot{lru_.begin(), age});
      } catch (...) {
        lru_.pop_front();
        throw;
      }
    } catch (...) {
      if (ttl_) by_age_.erase(age);
      throw;
    }
    if (ttl_) age->lru = lru_.begin();
    size_bytes_ += bytes;
  }

  void replace(const Slot& slot, V value, uint64_t bytes) {
    size_bytes_ = size_bytes_ - slot.lru->bytes + bytes;
    slot.lru->value = std::move(value);
    slot.lru->bytes = bytes;
    if (ttl_) {
      slot.age->put_at = Clock::now();
      by_age_.splice(by_age_.end(), by_age_, slot.age);
    }
    lru_.splice(lru_.begin(), lru_, slot.lru);
  }

  void remove(typename Index::iterator found) {
    size_bytes_ -= found->second.lru->bytes;
    if (ttl_) by_age_.erase(found->second.age);
    lru_.erase(found->second.lru);
    index_.erase(found);
  }

  void fit_locked(uint64_t limit_bytes) {
    if (ttl_) {
      Clock::time_point now = Clock::now();
      while (!by_age_.empty() && expired(by_age_.front(), now)) {
        ++stats_.expirations;
        remove(index_.find(by_age_.front().lru->key));
      }
    }
    while (size_bytes_ > limit_bytes) {
      ++stats_.evictions;
      remove(index_.find(lru_.back().key));
    }
  }

  mutable std::mutex mutex_;
  uint64_t budget_bytes_;
  std::optional<std::chrono::milliseconds> ttl_;
  uint64_t size_bytes_ = 0;
  LruList lru_;  // most recently used first
  AgeList by_age_;
  Index index_;
  CacheStats stats_;
};

}  // namespace memdx
