// The stack walk of capture_stack and its rule cache (see unwind.h for the contract).
//
// Each step from a frame to its caller needs the unwind rule of the code address the frame is
// executing (for a return address, the call instruction before it). Rules come from .eh_frame
// (unwind_cfi.cpp), which is far too slow to parse per allocation, so they are cached per return
// address in a global lock-free hash table. With a warm cache a step is a hash probe, the load of
// the return address at CFA-8 and, where the caller's RBP was saved, one more load.
#include "trace/preload/unwind.h"

#include <atomic>
#include <cstring>

#include "trace/preload/unwind_rule.h"
#include "trace/preload/unwind_stack.h"

namespace memdx::trace {
namespace {

using unwind_detail::AddressRange;
using unwind_detail::RbpRule;

// ---- Rule cache ------------------------------------------------------------------------------
//
// Open addressing, linear probing, no deletion. A slot's key is 0 (empty), kBusyKey (claimed by
// a writer) or the return address with the cache generation in bits 48-62. Writers claim a slot
// by CAS, write the rule, then publish the key; readers check the key again after reading the
// rule (a seqlock of one step), so a half-written or re-used slot reads as a miss, never as a
// wrong rule. unwind_forget_code() bumps the generation, which turns every slot stale at once;
// stale slots are reclaimed by later inserts. When the probe window is full we just don't cache.
//
// Keys and rules are two arrays rather than one array of pairs: the index then needs no scaling
// beyond what an x86 address takes for free, which is one cycle less on every frame's critical
// path (return address -> slot -> rule -> CFA -> next return address).

constexpr unsigned kCacheSlotBits = 16;
constexpr size_t kCacheSlots = size_t{1} << kCacheSlotBits;  // x 16 bytes = 1 MiB of .bss
constexpr size_t kMaxProbes = 8;
constexpr uint64_t kEmptyKey = 0;
constexpr uint64_t kBusyKey = uint64_t{1} << 63;
constexpr unsigned kGenerationShift = 48;
constexpr uint32_t kGenerationMask = 0x7fff;  // 15 bits; a generation of 0 is never used
// User-space code lives below 2^47 (2^56 only with 5-level paging and an explicit mmap hint);
// addresses that would collide with the generation bits are simply not cached.
constexpr uintptr_t kCacheableAddressLimit = uintptr_t{1} << kGenerationShift;

// Constant-initialized to zero (empty); 64-byte aligned so a probe window shares cache lines.
alignas(64) std::atomic<uint64_t> g_cache_keys[kCacheSlots];
alignas(64) std::atomic<uint64_t> g_cache_rules[kCacheSlots];  // pack_rule(), valid while keyed
std::atomic<uint32_t> g_generation{1};

// The generation bits of a key: a key is return_address | generation_key_bits(generation).
uint64_t generation_key_bits(uint32_t generation) noexcept {
  return static_cast<uint64_t>(generation & kGenerationMask) << kGenerationShift;
}

// Folds the library base (bits 16-31) into the offset within it (low bits), so that code at the
// same offset in many libraries (plugins built alike) does not pile into one probe window. The
// bare low bits would be two cycles (about 0.4 ns) faster per frame.
size_t cache_home_slot(uintptr_t return_address) noexcept {
  return static_cast<size_t>((return_address ^ (return_address >> kCacheSlotBits)) & (kCacheSlots - 1));
}

__attribute__((always_inline)) inline bool cache_find(uintptr_t return_address, uint64_t key,
                                                      uint64_t* packed_rule) noexcept {
  const size_t home = cache_home_slot(return_address);
  for (size_t probe = 0; probe < kMaxProbes; ++probe) {
    const size_t index = (home + probe) & (kCacheSlots - 1);
    const uint64_t seen = g_cache_keys[index].load(std::memory_order_acquire);
    if (seen == key) {
      const uint64_t rule = g_cache_rules[index].load(std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_acquire);
      if (g_cache_keys[index].load(std::memory_order_relaxed) != key) return false;  // re-used meanwhile
      *packed_rule = rule;
      return true;
    }
    if (seen == kEmptyKey) return false;  // slots never return to empty, so the key is not further on
  }
  return false;
}

bool slot_is_reusable(uint64_t key, uint32_t generation) noexcept {
  if (key == kEmptyKey) return true;
  if ((key & kBusyKey) != 0) return false;
  return ((key >> kGenerationShift) & kGenerationMask) != (generation & kGenerationMask);
}

void cache_insert(uintptr_t return_address, uint64_t key, uint32_t generation, uint64_t packed_rule) noexcept {
  const size_t home = cache_home_slot(return_address);
  for (size_t probe = 0; probe < kMaxProbes; ++probe) {
    const size_t index = (home + probe) & (kCacheSlots - 1);
    uint64_t seen = g_cache_keys[index].load(std::memory_order_relaxed);
    if (seen == key) return;  // another thread got there first
    if (!slot_is_reusable(seen, generation)) continue;
    if (!g_cache_keys[index].compare_exchange_strong(seen, kBusyKey, std::memory_order_acquire,
                                                     std::memory_order_relaxed)) {
      continue;  // lost the race for this slot; try the next one
    }
    // A reader that sees the new rule must also see the slot busy when it checks the key again.
    std::atomic_thread_fence(std::memory_order_release);
    g_cache_rules[index].store(packed_rule, std::memory_order_relaxed);
    g_cache_keys[index].store(key, std::memory_order_release);
    return;
  }
}

// Empties every published slot; used when the 15-bit generation wraps, so that rules from the
// previous use of a generation number cannot come back to life.
void cache_clear() noexcept {
  for (std::atomic<uint64_t>& slot_key : g_cache_keys) {
    uint64_t seen = slot_key.load(std::memory_order_relaxed);
    if (seen != kEmptyKey && (seen & kBusyKey) == 0) {
      slot_key.compare_exchange_strong(seen, kEmptyKey, std::memory_order_relaxed);
    }
  }
}

// A cache miss: computes the rule from .eh_frame and caches it. Kept out of line so that the
// walk's loop keeps its state in registers.
__attribute__((noinline, cold)) uint64_t compute_and_cache_rule(uintptr_t return_address,
                                                                uint32_t generation) noexcept {
  // The rule of the call instruction, return_address - 1: the return address itself may belong
  // to the next function or to other CFI when the call is the last instruction (noreturn callee).
  const uint64_t packed = unwind_detail::pack_rule(unwind_detail::compute_frame_rule(return_address - 1));
  if (return_address < kCacheableAddressLimit) {
    cache_insert(return_address, return_address | generation_key_bits(generation), generation, packed);
  }
  return packed;
}

// The packed rule for a frame whose return address is return_address.
__attribute__((always_inline)) inline uint64_t rule_for_return_address(uintptr_t return_address, uint64_t key_bits,
                                                                       uint32_t generation) noexcept {
  uint64_t packed = 0;
  if (return_address < kCacheableAddressLimit && cache_find(return_address, return_address | key_bits, &packed)) {
    return packed;
  }
  return compute_and_cache_rule(return_address, generation);
}

// ---- Per-thread stack bounds -----------------------------------------------------------------

struct ThreadStack {  // zero-initialized TLS: not known yet
  uintptr_t low;
  uintptr_t high;
  bool known;
};

__thread ThreadStack t_stack __attribute__((tls_model("initial-exec")));

// The top of the stack capture_stack runs on, given its frame pointer: a walk reads only between
// capture_stack's own frame and this. Its own frame's two words (saved RBP, return address) are
// always readable, so an unknown stack yields exactly frames[0].
uintptr_t stack_high_for(uintptr_t frame_pointer) noexcept {
  if (!t_stack.known) unwind_thread_init();
  AddressRange stack{t_stack.low, t_stack.high};
  if (!t_stack.known || !stack.contains(frame_pointer)) {
    stack = unwind_detail::query_active_altstack();  // a signal handler on its own stack
    if (!stack.contains(frame_pointer)) return frame_pointer + 2 * sizeof(uintptr_t);
  }
  return stack.high;
}

// ---- The walk --------------------------------------------------------------------------------

// The registers an x86_64 walk needs, for one frame: where it executes (a return address), its
// stack pointer (the CFA of the frame below it) and RBP. An unknown RBP is 0: a CFA computed
// from it fails the checks below, which is exactly "stop if this frame needs RBP".
struct Registers {
  uintptr_t ip;
  uintptr_t sp;
  uintptr_t bp;
};

// Moves regs from a frame to its caller with the frame's packed rule. False where the rule or
// the stack does not allow it. All reads lie in [regs.sp, stack_high), which is this frame's part
// of the stack or above it.
__attribute__((always_inline)) inline bool step_to_caller(Registers& regs, uint64_t rule, uintptr_t stack_high,
                                                          uintptr_t* rbp_slot_read) noexcept {
  *rbp_slot_read = 0;
  if (!unwind_detail::packed_can_unwind(rule)) return false;
  const uintptr_t base = unwind_detail::packed_cfa_from_rbp(rule) ? regs.bp : regs.sp;
  const uintptr_t cfa = base + static_cast<uintptr_t>(static_cast<intptr_t>(unwind_detail::packed_cfa_offset(rule)));
  // The caller's CFA lies above ours by at least the return address slot (this also rejects a
  // wrapped-around sum, and strictly increasing CFAs guarantee that the walk ends), and the
  // return address below it lies within the stack.
  if (cfa < regs.sp + sizeof(uintptr_t) || cfa > stack_high) return false;
  const RbpRule rbp_rule = unwind_detail::packed_rbp_rule(rule);
  if (rbp_rule == RbpRule::kSavedAtCfa) {
    // Saved in this frame, below the return address slot.
    const uintptr_t slot = cfa + static_cast<uintptr_t>(static_cast<intptr_t>(unwind_detail::packed_rbp_offset(rule)));
    if (slot < regs.sp || slot > cfa - 2 * sizeof(uintptr_t)) return false;
    unwind_detail::copy_from_address(&regs.bp, slot, sizeof(uintptr_t));
    *rbp_slot_read = slot;
  } else if (rbp_rule == RbpRule::kUnknown) {
    regs.bp = 0;
  }
  unwind_detail::copy_from_address(&regs.ip, cfa - sizeof(uintptr_t), sizeof(uintptr_t));
  regs.sp = cfa;
  return true;
}

// The lowest address code can have (the first page is never mapped); a return address below it
// is the end of the chain (0) or garbage.
constexpr uintptr_t kLowestCodeAddress = 4096;

// ---- The previous walk of this thread -------------------------------------------------------
//
// Allocations come in runs from the same deep call chain, so most of a walk repeats the
// previous one: the frames from main (or a thread's start) down to the loop that allocates.
// Each thread keeps its last walk: per frame the registers (ip, sp, bp) and the one or two
// stack words the step to its caller read. When a new walk reaches a frame with exactly the
// registers of a remembered one, the rest of the walk is a function of those registers and of
// the remembered words alone (rules depend only on ip and the cache generation), so it is
// taken from memory after checking that every one of those words still holds the value read
// then: a load and a compare per frame instead of a probe, a rule and the loads.

// A walk is remembered up to this many frames (4 KiB of stack for the new walk's record).
constexpr size_t kMemoFrames = 128;

struct MemoFrame {
  uintptr_t ip, sp, bp;
  uintptr_t rbp_slot;  // the word the step to the caller read RBP from, or 0
};

struct WalkMemo {  // zero-initialized TLS: empty
  MemoFrame frames[kMemoFrames];
  size_t count;
  bool complete;  // the walk ended by itself (not at max_frames)
  uint32_t generation;
  uintptr_t stack_high;
};

__thread WalkMemo t_memo __attribute__((tls_model("initial-exec")));

// Whether the remembered walk from frame `from` on would read the same words again.
bool memo_still_holds(const WalkMemo& memo, size_t from) noexcept {
  for (size_t i = from; i + 1 < memo.count; ++i) {
    const MemoFrame& frame = memo.frames[i];
    const MemoFrame& caller = memo.frames[i + 1];
    uintptr_t word = 0;
    unwind_detail::copy_from_address(&word, caller.sp - sizeof(uintptr_t), sizeof(uintptr_t));
    if (word != caller.ip) return false;
    if (frame.rbp_slot != 0) {
      unwind_detail::copy_from_address(&word, frame.rbp_slot, sizeof(uintptr_t));
      if (word != caller.bp) return false;
    }
  }
  return true;
}

// The remembered frame with these registers, or kMemoFrames. Both walks go up the stack, so
// one cursor over the memo serves the whole walk.
size_t memo_match(const WalkMemo& memo, size_t& cursor, const Registers& regs) noexcept {
  while (cursor < memo.count && memo.frames[cursor].sp < regs.sp) ++cursor;
  if (cursor == memo.count) return kMemoFrames;
  const MemoFrame& frame = memo.frames[cursor];
  if (frame.sp != regs.sp || frame.ip != regs.ip || frame.bp != regs.bp) return kMemoFrames;
  return cursor;
}

void remember_walk(const MemoFrame* fresh, size_t fresh_count, bool complete, uint32_t generation,
                   uintptr_t stack_high) noexcept {
  WalkMemo& memo = t_memo;
  for (size_t i = 0; i < fresh_count; ++i) memo.frames[i] = fresh[i];
  memo.count = fresh_count;
  memo.complete = complete && fresh_count < kMemoFrames;
  memo.generation = generation;
  memo.stack_high = stack_high;
}

// The walk met remembered frame `match` with equal registers and words: the frames from there
// on are the remembered ones. A remembered walk cut at max_frames goes on from its last frame.
__attribute__((noinline)) size_t finish_from_memo(WalkMemo& memo, size_t match, const MemoFrame* fresh,
                                                  size_t fresh_count, uintptr_t* frames, size_t count,
                                                  size_t max_frames, uint64_t key_bits, uint32_t generation,
                                                  uintptr_t stack_high) noexcept {
  const size_t tail = memo.count - match;
  const size_t copied = tail < max_frames - count ? tail : max_frames - count;
  for (size_t i = 0; i < copied; ++i) frames[count + i] = memo.frames[match + i].ip;
  count += copied;
  // Remember the new walk: the fresh prefix, then the remembered tail moved up behind it.
  size_t kept_tail = tail < kMemoFrames - fresh_count ? tail : kMemoFrames - fresh_count;
  std::memmove(&memo.frames[fresh_count], &memo.frames[match], kept_tail * sizeof(MemoFrame));
  std::memcpy(&memo.frames[0], fresh, fresh_count * sizeof(MemoFrame));
  const bool tail_was_complete = memo.complete && kept_tail == tail;
  memo.count = fresh_count + kept_tail;
  memo.generation = generation;
  memo.stack_high = stack_high;
  memo.complete = tail_was_complete;
  if (copied < tail || memo.complete || count == max_frames || kept_tail < tail) return count;
  // The remembered walk stopped at its own max_frames: go on past its last frame.
  const MemoFrame last = memo.frames[memo.count - 1];
  Registers regs{last.ip, last.sp, last.bp};
  uintptr_t rbp_slot = 0;
  memo.complete = true;
  while (step_to_caller(regs, rule_for_return_address(regs.ip, key_bits, generation), stack_high, &rbp_slot) &&
         regs.ip >= kLowestCodeAddress) {
    frames[count++] = regs.ip;
    if (memo.count < kMemoFrames) {
      memo.frames[memo.count - 1].rbp_slot = rbp_slot;
      memo.frames[memo.count++] = {regs.ip, regs.sp, regs.bp, 0};
    } else {
      memo.complete = false;
    }
    if (count == max_frames) {
      memo.complete = false;
      break;
    }
  }
  return count;
}

size_t walk(Registers regs, uintptr_t stack_high, uintptr_t* frames, size_t max_frames, size_t skip) noexcept {
  // Rules are cached under the generation seen when the walk began, so a rule computed from code
  // that unwind_forget_code() has since declared gone is never cached as current.
  const uint32_t generation = g_generation.load(std::memory_order_acquire);
  const uint64_t key_bits = generation_key_bits(generation);
  uintptr_t rbp_slot = 0;
  for (; skip > 0; --skip) {
    if (regs.ip < kLowestCodeAddress) return 0;
    if (!step_to_caller(regs, rule_for_return_address(regs.ip, key_bits, generation), stack_high, &rbp_slot)) return 0;
  }
  WalkMemo& memo = t_memo;
  // Matching stops after one failed check (something below changed: walk on) and once the
  // record of this walk is full.
  bool try_memo = memo.count > 0 && memo.generation == generation && memo.stack_high == stack_high;
  MemoFrame fresh[kMemoFrames];
  size_t fresh_count = 0;
  size_t cursor = 0;
  size_t count = 0;
  bool complete = true;
  uintptr_t unrecorded_rbp_slot = 0;
  while (regs.ip >= kLowestCodeAddress) {
    if (try_memo) {
      size_t match = memo_match(memo, cursor, regs);
      if (match != kMemoFrames) {
        if (memo_still_holds(memo, match)) {
          return finish_from_memo(memo, match, fresh, fresh_count, frames, count, max_frames, key_bits, generation,
                                  stack_high);
        }
        try_memo = false;
      }
    }
    frames[count++] = regs.ip;
    uintptr_t* rbp_slot_out = &unrecorded_rbp_slot;
    if (fresh_count < kMemoFrames) {
      fresh[fresh_count] = {regs.ip, regs.sp, regs.bp, 0};
      rbp_slot_out = &fresh[fresh_count++].rbp_slot;
    } else {
      try_memo = false;
      complete = false;
    }
    if (count == max_frames) {
      complete = false;
      break;
    }
    if (!step_to_caller(regs, rule_for_return_address(regs.ip, key_bits, generation), stack_high, rbp_slot_out)) break;
  }
  remember_walk(fresh, fresh_count, complete, generation, stack_high);
  return count;
}

}  // namespace

// noinline and built with frame pointers: its own frame gives the caller's registers directly
// (RA at [rbp+8], the caller's RSP after the return is rbp+16, the caller's RBP at [rbp]).
__attribute__((noinline)) size_t capture_stack(uintptr_t* frames, size_t max_frames, size_t skip) noexcept {
  if (max_frames == 0) return 0;
  const auto frame_pointer = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  Registers regs{};
  regs.ip = reinterpret_cast<uintptr_t>(__builtin_return_address(0));
  regs.sp = frame_pointer + 2 * sizeof(uintptr_t);
  unwind_detail::copy_from_address(&regs.bp, frame_pointer, sizeof(uintptr_t));
  return walk(regs, stack_high_for(frame_pointer), frames, max_frames, skip);
}

void unwind_forget_code() noexcept {
  uint32_t current = g_generation.load(std::memory_order_relaxed);
  for (;;) {
    uint32_t next = current + 1;
    if ((next & kGenerationMask) == 0) {
      // About to reuse generation numbers: empty the table before they become current again.
      cache_clear();
      ++next;
    }
    if (g_generation.compare_exchange_weak(current, next, std::memory_order_acq_rel)) return;
  }
}

void unwind_thread_init() noexcept {
  if (t_stack.known) return;
  const auto sp = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  // On a sigaltstack we are in a signal handler: leave the work that is not async-signal-safe
  // for later (this capture uses the sigaltstack's bounds).
  if (unwind_detail::query_active_altstack().contains(sp)) return;
  const AddressRange stack = unwind_detail::query_thread_stack();
  t_stack.low = stack.low;
  t_stack.high = stack.high;
  t_stack.known = true;
}

void unwind_after_fork_child() noexcept {
  t_stack.known = false;
  t_memo.count = 0;
}

}  // namespace memdx::trace
