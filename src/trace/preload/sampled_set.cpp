#include "trace/preload/sampled_set.h"

#include <sys/mman.h>

#include <atomic>
#include <cstdint>

#include "trace/preload/real.h"

namespace memdx::trace {
namespace {

// 2^18 slots (2 MiB of address space, mapped on the first sample). At the usual sampling rates
// a process holds far fewer sampled blocks; past half full, new samples are refused.
constexpr size_t kSlotCount = size_t{1} << 18;
constexpr size_t kMaxLive = kSlotCount / 2;
constexpr uintptr_t kEmpty = 0;
constexpr uintptr_t kTombstone = 1;  // no block lives at address 1

std::atomic<void*> slots_memory{nullptr};
std::atomic<size_t> live{0};
// The farthest from its home slot any address was ever placed: an erase looks no further. Erased
// slots become tombstones, and over a long run they take the place of every empty slot; without
// this bound a free of an unsampled block would then scan the whole table (34 s per million
// frees after three million samples, against 7 ms).
std::atomic<size_t> max_displacement{0};

void note_displacement(size_t probes) noexcept {
  size_t seen = max_displacement.load(std::memory_order_relaxed);
  while (probes > seen && !max_displacement.compare_exchange_weak(seen, probes, std::memory_order_release)) {
  }
}

// How many sampled live blocks hash to each of 2^16 buckets: almost every free is of a block that
// was not sampled, and a zero here (64 KiB, which stays in cache) says so without touching the
// 2 MiB set.
constexpr size_t kFilterBuckets = size_t{1} << 16;
std::atomic<uint8_t> filter[kFilterBuckets];

size_t filter_bucket(uintptr_t address) noexcept {
  return static_cast<size_t>(((address >> 4) * 0xff51afd7ed558ccdull) >> 48);
}

std::atomic<uintptr_t>* table() noexcept {
  return static_cast<std::atomic<uintptr_t>*>(map_zeroed_once(slots_memory, kSlotCount * sizeof(uintptr_t)));
}

size_t home(uintptr_t address) noexcept {
  uint64_t mixed = (address >> 4) * 0x9e3779b97f4a7c15ull;
  return static_cast<size_t>(mixed >> 46);  // the top 18 bits
}

}  // namespace

bool sampled_set_insert(const void* address) noexcept {
  std::atomic<uintptr_t>* set = table();
  if (!set || live.load(std::memory_order_relaxed) >= kMaxLive) return false;
  auto key = reinterpret_cast<uintptr_t>(address);
  for (size_t i = home(key), probes = 0; probes < kSlotCount; i = (i + 1) & (kSlotCount - 1), ++probes) {
    uintptr_t seen = set[i].load(std::memory_order_relaxed);
    if (seen != kEmpty && seen != kTombstone) continue;
    std::atomic<uint8_t>& bucket = filter[filter_bucket(key)];
    if (bucket.load(std::memory_order_relaxed) == 255) return false;  // saturated: don't sample it
    if (set[i].compare_exchange_strong(seen, key, std::memory_order_acq_rel)) {
      // Before the caller returns the block: its free, on any thread, happens after this.
      note_displacement(probes);
      bucket.fetch_add(1, std::memory_order_relaxed);
      live.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
  }
  return false;
}

bool sampled_set_erase(const void* address) noexcept {
  auto key = reinterpret_cast<uintptr_t>(address);
  std::atomic<uint8_t>& bucket = filter[filter_bucket(key)];
  if (bucket.load(std::memory_order_relaxed) == 0) return false;
  auto* set = static_cast<std::atomic<uintptr_t>*>(slots_memory.load(std::memory_order_acquire));
  if (!set) return false;
  const size_t farthest = max_displacement.load(std::memory_order_acquire);
  for (size_t i = home(key), probes = 0; probes <= farthest; i = (i + 1) & (kSlotCount - 1), ++probes) {
    uintptr_t seen = set[i].load(std::memory_order_acquire);
    if (seen == kEmpty) return false;
    if (seen != key) continue;
    if (set[i].compare_exchange_strong(seen, kTombstone, std::memory_order_acq_rel)) {
      bucket.fetch_sub(1, std::memory_order_relaxed);
      live.fetch_sub(1, std::memory_order_relaxed);
      return true;
    }
    return false;
  }
  return false;
}

size_t sampled_set_bytes() noexcept {
  return slots_memory.load(std::memory_order_relaxed) ? kSlotCount * sizeof(uintptr_t) + sizeof(filter) : 0;
}

}  // namespace memdx::trace
