#include "trace/preload/stack_table.h"

#include <sys/mman.h>

#include <atomic>

#include "trace/preload/real.h"

namespace memdx::trace {
namespace {

// 2^20 slots of 16 bytes: 16 MiB of address space, touched only where stacks land. Half full
// (524,288 stacks) it stops taking new ones, which keeps probe runs short.
constexpr size_t kSlotCount = size_t{1} << 20;
constexpr size_t kMaxFilled = kSlotCount / 2;

struct Slot {
  std::atomic<uint64_t> hash;    // 0: empty
  std::atomic<uint64_t> id_gen;  // stream generation << 32 | id; 0 while being written
};

std::atomic<void*> slots_memory{nullptr};
std::atomic<uint32_t> next_id{1};
std::atomic<size_t> filled{0};
std::atomic<uint32_t> generation{1};
std::atomic<bool> full_reported{false};
std::atomic<uint64_t> epoch{0};  // of the loaded code; mixed into every hash

Slot* table() noexcept {
  return static_cast<Slot*>(map_zeroed_once(slots_memory, kSlotCount * sizeof(Slot)));
}

StackLookup fresh_id(bool* became_full) noexcept {
  if (!full_reported.exchange(true, std::memory_order_relaxed)) *became_full = true;
  return {next_id.fetch_add(1, std::memory_order_relaxed), true};
}

// An entry made in an earlier stream (before a fork): claim the right to define it again.
StackLookup redefine(Slot& slot, uint64_t id_gen, uint32_t current) noexcept {
  auto id = static_cast<uint32_t>(id_gen);
  uint64_t wanted = (uint64_t{current} << 32) | id;
  bool mine = slot.id_gen.compare_exchange_strong(id_gen, wanted, std::memory_order_acq_rel);
  return {id, mine};
}

}  // namespace

// Two independent lanes (even and odd frames): each step is a xor and a multiply, and the two
// chains overlap in the pipeline, which halves the latency of a deep stack's hash.
uint64_t hash_stack(const uintptr_t* frames, size_t depth) noexcept {
  uint64_t even = 0x9e3779b97f4a7c15ull ^ depth;
  uint64_t odd = 0xc2b2ae3d27d4eb4full;
  size_t i = 0;
  for (; i + 1 < depth; i += 2) {
    even = (even ^ frames[i]) * 0xff51afd7ed558ccdull;
    odd = (odd ^ frames[i + 1]) * 0xc4ceb9fe1a85ec53ull;
    even ^= even >> 29;
    odd ^= odd >> 31;
  }
  if (i < depth) even = (even ^ frames[i]) * 0xff51afd7ed558ccdull;
  uint64_t hash = even ^ (odd * 0x9e3779b97f4a7c15ull);
  hash ^= hash >> 29;
  hash *= 0xc4ceb9fe1a85ec53ull;
  hash ^= hash >> 32;
  return hash == 0 ? 1 : hash;
}

StackLookup lookup_stack(uint64_t hash, bool* became_full) noexcept {
  hash ^= epoch.load(std::memory_order_acquire) * 0x9e3779b97f4a7c15ull;
  if (hash == 0) hash = 1;
  Slot* slots_now = table();
  if (!slots_now) return fresh_id(became_full);
  uint32_t current = generation.load(std::memory_order_relaxed);
  for (size_t index = hash & (kSlotCount - 1);; index = (index + 1) & (kSlotCount - 1)) {
    Slot& slot = slots_now[index];
    uint64_t seen = slot.hash.load(std::memory_order_acquire);
    if (seen == hash) {
      uint64_t id_gen = slot.id_gen.load(std::memory_order_acquire);
      if (id_gen == 0) return {next_id.fetch_add(1, std::memory_order_relaxed), true};
      if ((id_gen >> 32) == current) return {static_cast<uint32_t>(id_gen), false};
      return redefine(slot, id_gen, current);
    }
    if (seen != 0) continue;
    if (filled.load(std::memory_order_relaxed) >= kMaxFilled) return fresh_id(became_full);
    if (!slot.hash.compare_exchange_strong(seen, hash, std::memory_order_acq_rel)) {
      if (seen == hash) {
        index = (index - 1) & (kSlotCount - 1);  // look at this slot again: another thread won it
      }
      continue;
    }
    filled.fetch_add(1, std::memory_order_relaxed);
    uint32_t id = next_id.fetch_add(1, std::memory_order_relaxed);
    slot.id_gen.store((uint64_t{current} << 32) | id, std::memory_order_release);
    return {id, true};
  }
}

void stack_table_new_epoch() noexcept {
  epoch.fetch_add(1, std::memory_order_acq_rel);
}

void stack_table_new_stream() noexcept {
  generation.fetch_add(1, std::memory_order_relaxed);
  full_reported.store(false, std::memory_order_relaxed);
}

size_t stack_table_bytes() noexcept {
  // Each stack touches at most one new 4 KiB page; the table never exceeds its mapping.
  size_t touched = filled.load(std::memory_order_relaxed) * 4096;
  size_t mapped = slots_memory.load(std::memory_order_relaxed) ? kSlotCount * sizeof(Slot) : 0;
  return touched < mapped ? touched : mapped;
}

}  // namespace memdx::trace
