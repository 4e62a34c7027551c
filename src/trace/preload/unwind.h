#pragma once
// Stack capture for the injected heap tracer: a DWARF-CFI (.eh_frame) unwinder for x86_64 that
// works through code built without frame pointers, with a lock-free per-return-address cache of
// unwind rules so that the steady state costs a hash lookup and two loads per frame.
//
// Everything here is async-signal-safe once the calling thread has run unwind_thread_init()
// (capture_stack runs it lazily; that first call reads /proc/self/maps).
// No locks, no malloc, no exceptions, no C++ runtime.
#include <cstddef>
#include <cstdint>

namespace memdx::trace {

// Writes the return addresses of the active call chain into frames, innermost first.
//
// Contract (tested in tests/trace/unwind_test.cpp):
//   - with skip = 0, frames[0] is capture_stack's own return address, i.e. the address in the
//     function that called capture_stack just after that call; frames[1] is that function's
//     return address (an address inside its caller), and so on outwards;
//   - skip = N drops the first N of those, so frames[0] is then what skip = 0 puts in frames[N].
// This matches glibc's backtrace() called from the same function: both start with the return
// address of the call that captures, so from index 1 on the two arrays are equal.
//
// Returns the number of frames written (<= max_frames). The walk stops
//   - at the outermost frame (return address 0, or CFI that marks the return address undefined,
//     as _start and clone3 do): that frame's own address is the last one written;
//   - at a signal trampoline (__restore_rt, whose address is written) or any CFI it cannot
//     interpret (a CFA or return address given by a DWARF expression, no FDE, unusual encodings);
//   - when the next CFA does not lie strictly above the current one inside the thread's stack;
//   - at max_frames.
// Never crashes: every stack read is checked against the current thread's stack bounds first
// (the sigaltstack's bounds when running on it; only frames[0] on an unknown stack).
size_t capture_stack(uintptr_t* frames, size_t max_frames, size_t skip) noexcept;

// Forgets cached rules, after a dlclose may have unmapped code (another library may be mapped at
// the same addresses later). Safe to call concurrently with capture_stack. Note that a thread
// still unwinding through the unmapped library's .eh_frame at that moment is not protected.
void unwind_forget_code() noexcept;

// Optional per-thread set-up (stack bounds); capture_stack calls it lazily if not done.
// Call it outside signal handlers: it reads /proc/self/maps. It takes no lock and never allocates.
void unwind_thread_init() noexcept;

// Resets per-thread state in a child after fork() (the TLS of the forking thread is copied, and
// the child's only thread is now its main thread). The cache stays valid: same mappings.
void unwind_after_fork_child() noexcept;

}  // namespace memdx::trace
