// memdx::ByteBudgetCache beside the LRU most programs write by hand (std::unordered_map of
// std::list iterators, byte accounting, no lock), on the same workload: a get that hits, and a
// put of a new key that evicts one entry. range(0) is the number of entries resident.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <list>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include <memdx/cache.h>

namespace {

constexpr uint64_t kEntryBytes = 64;

// The peer: what the cache does minus the mutex, the stats, the ttl and the oversize check.
class PlainLru {
 public:
  explicit PlainLru(uint64_t budget_bytes) : budget_bytes_(budget_bytes) {}

  void put(uint64_t key, uint64_t value, uint64_t bytes) {
    auto found = index_.find(key);
    if (found != index_.end()) {
      size_bytes_ -= found->second->bytes;
      entries_.erase(found->second);
      index_.erase(found);
    }
    entries_.push_front(Entry{key, value, bytes});
    index_.emplace(key, entries_.begin());
    size_bytes_ += bytes;
    while (size_bytes_ > budget_bytes_) {
      size_bytes_ -= entries_.back().bytes;
      index_.erase(entries_.back().key);
      entries_.pop_back();
    }
  }

  const uint64_t* get(uint64_t key) {
    auto found = index_.find(key);
    if (found == index_.end()) return nullptr;
    entries_.splice(entries_.begin(), entries_, found->second);
    return &found->second->value;
  }

 private:
  struct Entry {
    uint64_t key;
    uint64_t value;
    uint64_t bytes;
  };
  uint64_t budget_bytes_;
  uint64_t size_bytes_ = 0;
  std::list<Entry> entries_;
  std::unordered_map<uint64_t, std::list<Entry>::iterator> index_;
};

// The peer behind one mutex, as a program shares it between threads: how much of the gap to
// PlainLru is the lock.
class LockedPlainLru {
 public:
  explicit LockedPlainLru(uint64_t budget_bytes) : lru_(budget_bytes) {}
  void put(uint64_t key, uint64_t value, uint64_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    lru_.put(key, value, bytes);
  }
  const uint64_t* get(uint64_t key) {
    std::lock_guard<std::mutex> lock(mutex_);
    return lru_.get(key);
  }

 private:
  std::mutex mutex_;
  PlainLru lru_;
};

using Cache = memdx::ByteBudgetCache<uint64_t, uint64_t>;

// Keys drawn uniformly from [0, entries), the same sequence for both caches.
std::vector<uint64_t> random_keys(uint64_t entries) {
  std::vector<uint64_t> keys(1 << 16);
  uint64_t state = 0x9e3779b97f4a7c15u;
  for (uint64_t& key : keys) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    key = state % entries;
  }
  return keys;
}

template <class C>
void fill(C& cache, uint64_t entries) {
  for (uint64_t key = 0; key < entries; ++key) cache.put(key, key, kEntryBytes);
}

template <class C>
void get_hit(benchmark::State& state) {
  const auto entries = static_cast<uint64_t>(state.range(0));
  C cache(entries * kEntryBytes);
  fill(cache, entries);
  std::vector<uint64_t> keys = random_keys(entries);
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(cache.get(keys[i]));
    i = (i + 1) & (keys.size() - 1);
  }
}

// Every put is of a key never seen: the cache is full, so each one evicts the least recent.
template <class C>
void put_evicting(benchmark::State& state) {
  const auto entries = static_cast<uint64_t>(state.range(0));
  C cache(entries * kEntryBytes);
  fill(cache, entries);
  uint64_t key = entries;
  for (auto _ : state) {
    cache.put(key, key, kEntryBytes);
    ++key;
  }
}

void BM_CacheGetHit(benchmark::State& state) {
  get_hit<Cache>(state);
}
void BM_PlainLruGetHit(benchmark::State& state) {
  get_hit<PlainLru>(state);
}
void BM_LockedPlainLruGetHit(benchmark::State& state) {
  get_hit<LockedPlainLru>(state);
}
void BM_CachePutEvicting(benchmark::State& state) {
  put_evicting<Cache>(state);
}
void BM_PlainLruPutEvicting(benchmark::State& state) {
  put_evicting<PlainLru>(state);
}
void BM_LockedPlainLruPutEvicting(benchmark::State& state) {
  put_evicting<LockedPlainLru>(state);
}

void BM_CacheGetCopyHit(benchmark::State& state) {
  const auto entries = static_cast<uint64_t>(state.range(0));
  Cache cache(entries * kEntryBytes);
  fill(cache, entries);
  std::vector<uint64_t> keys = random_keys(entries);
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(cache.get_copy(keys[i]));
    i = (i + 1) & (keys.size() - 1);
  }
}

BENCHMARK(BM_CacheGetHit)->Arg(1000)->Arg(100000);
BENCHMARK(BM_PlainLruGetHit)->Arg(1000)->Arg(100000);
BENCHMARK(BM_LockedPlainLruGetHit)->Arg(1000)->Arg(100000);
BENCHMARK(BM_CacheGetCopyHit)->Arg(1000)->Arg(100000);
BENCHMARK(BM_CachePutEvicting)->Arg(1000)->Arg(100000);
BENCHMARK(BM_PlainLruPutEvicting)->Arg(1000)->Arg(100000);
BENCHMARK(BM_LockedPlainLruPutEvicting)->Arg(1000)->Arg(100000);

}  // namespace

BENCHMARK_MAIN();
