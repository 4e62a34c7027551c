#pragma once
// Where a thread's stack lies, for the unwinder's bounds checks. Internal to the unwinder.
#include <cstdint>

namespace memdx::trace::unwind_detail {

// A half-open address range [low, high); empty when low == high.
struct AddressRange {
  uintptr_t low = 0;
  uintptr_t high = 0;
  bool contains(uintptr_t address) const noexcept { return address >= low && address < high; }
};

// The calling thread's own stack, whatever stack sp (the caller's stack pointer) is on:
// pthread_getattr_np (which may allocate), except for the main thread running on its [stack]
// mapping, found by reading /proc/self/maps with open/read into a stack buffer. For the main
// thread the range starts where the mapping below the stack ends, since the stack grows down into
// that gap. Empty if nothing is known. Not async-signal-safe.
AddressRange query_thread_stack(uintptr_t sp) noexcept;

// The sigaltstack the thread runs on, or an empty range when it is not on one.
// Async-signal-safe (one system call).
AddressRange query_active_altstack() noexcept;

}  // namespace memdx::trace::unwind_detail
