// The tracer's state and the events it records. The hooks (hooks_*.cpp) call these with the
// thread's reentrancy guard set, so anything called from here that allocates goes straight to
// the real allocator.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "trace/format/wire.h"

namespace memdx::trace {

struct ThreadLog;

// Set while this thread is inside the tracer; checked first by every hook. Initial-exec TLS:
// no allocation and no lock on first access.
// NOLINTNEXTLINE(bugprone-dynamic-static-initializers): a declaration; tracer.cpp defines it
extern __thread bool in_tracer __attribute__((tls_model("initial-exec")));

// NOLINTNEXTLINE(bugprone-dynamic-static-initializers): a declaration; tracer.cpp defines it
extern std::atomic<bool> tracing;
inline bool tracing_active() noexcept {
  return tracing.load(std::memory_order_relaxed);
}

// Reads the environment memdx set, connects, sends the module map. Runs once: from the first
// hooked call after the loader is ready (other libraries' constructors allocate before this
// library's own constructor runs), or from that constructor.
void tracer_init() noexcept;
// For the hooks while tracing is off: starts it if it has not been tried yet and the loader is
// ready. Returns whether tracing is on.
bool start_tracing_if_due() noexcept;

// The collector has gone or a buffer could not be sent: hooks pass straight through from now on.
void stop_tracing() noexcept;

// Events. The `noinline` keeps the frame count between a hook and the unwinder fixed.
__attribute__((noinline)) void record_alloc(const void* address, size_t size) noexcept;
__attribute__((noinline)) void record_free(const void* address) noexcept;
// A free whose seq was read earlier (current_seq()), before the real function could free the
// block: realloc records the free of the old block only once it knows realloc did not fail.
void record_free_at(const void* address, uint64_t seq) noexcept;
__attribute__((noinline)) void record_mmap(const void* address, size_t length, int prot, int flags, int fd) noexcept;
// An mprotect() that succeeded: only whether the range is accessible at all matters.
__attribute__((noinline)) void record_protect(const void* address, size_t length, int prot) noexcept;
__attribute__((noinline)) void record_munmap(const void* address, size_t length) noexcept;

// Sends one process record (module, marker, note, end) as its own batch; stops tracing when the
// collector is gone.
void send_process_record(const uint8_t* begin, const uint8_t* end) noexcept;

// The sequence number the next event will get (for process records).
uint64_t current_seq() noexcept;

// exit/exec/abort: everything buffered goes out, then the end record.
void finish_process(wire::EndReason reason, int status) noexcept;

// Thread logs call these.
void register_thread_exit(ThreadLog* log) noexcept;
void start_sampling(ThreadLog& log) noexcept;

// The tracer's own open descriptors (its socket, /proc/self/statm), which the program's close,
// close_range, closefrom, dup2 and dup3 must leave alone: written ascending into `out`.
inline constexpr size_t kMaxTracerDescriptors = 2;
size_t tracer_descriptors(int* out) noexcept;
// dup2/dup3 are about to put another file at `fd`: a tracer descriptor there moves first.
void tracer_move_descriptor_off(int fd) noexcept;

// The library path and settings memdx gave, for exec to pass on.
const char* preload_entry() noexcept;  // this library's path as LD_PRELOAD named it

}  // namespace memdx::trace
