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

// The calling thread's stack, from /proc/self/maps read with direct system calls: no libc
// function that locks or allocates (glibc's pthread_getattr_np holds the thread's lock while it
// calls realloc, so a hook reaching it from inside that realloc would wait on itself forever).
// For a thread of pthread_create, the mapping holding its descriptor (the top of its stack block);
// for the main thread its [stack], widened down to the end of the mapping below it since the
// stack grows into that gap. Either holds wherever the thread runs now (a coroutine's stack, a
// signal stack). Empty if nothing is known. Made of system calls alone, but it reads a file, so it
// stays out of the hot path: once per thread.
AddressRange query_thread_stack() noexcept;

// The sigaltstack the thread runs on, or an empty range when it is not on one.
// Async-signal-safe (one system call).
AddressRange query_active_altstack() noexcept;

}  // namespace memdx::trace::unwind_detail
