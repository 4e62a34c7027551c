// Per-thread event buffers. The owning thread appends records and publishes them with one
// release store; flushing (by the owner when its buffer fills or ages, by any thread for a
// periodic or final flush-all) sends the published bytes under the buffer's own flag, so a
// flush never waits for an unwind and an append never waits for anything.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace memdx::trace {

inline constexpr size_t kThreadBufferBytes = size_t{64} * 1024;
// Room one event needs at most besides its stack definition (tag + 5 varints).
inline constexpr size_t kMaxEventBytes = 1 + 5 * 10;
inline constexpr size_t kRecentSlots = 1024;

struct ThreadLog {
  ThreadLog* next;                  // registry link; logs are reused, never unmapped
  std::atomic<bool> in_use;         // owned by a live thread
  std::atomic<bool> flushing;       // the flush flag (a tiny spin lock, never held while unwinding)
  std::atomic<uint32_t> committed;  // bytes of whole records, written by the owner only
  uint32_t flushed;                 // bytes sent; under `flushing`
  bool first_batch;                 // next batch starts this thread's stream; under `flushing`
  pid_t tid;
  // Encoder state, owner only: fields are deltas from these.
  uint64_t previous_seq;
  uint64_t previous_address;  // of the last kAlloc
  uint64_t alloc_ordinal;     // kAllocs written in this thread's stream
  // Direct-mapped by address: the thread's recent allocations, for kFreeRecent.
  uint64_t recent_address[kRecentSlots];
  uint64_t recent_ordinal[kRecentSlots];
  std::atomic<uint64_t> last_flush_ns;  // coarse clock; the owner and the flusher set it
  uint32_t events_until_clock_check;
  int64_t bytes_until_sample;  // sampling mode: bytes left before the next sample
  uint64_t random_state;       // sampling mode: xorshift state
  uint8_t data[kThreadBufferBytes];
};

// The calling thread's log, created (mmap, no malloc) on first use; null if that fails.
ThreadLog* current_thread_log() noexcept;

// Room for `bytes` more in the owner's buffer, flushing it first if needed. False when the
// record can never fit or the stream is gone.
bool reserve(ThreadLog& log, size_t bytes) noexcept;

inline uint8_t* write_cursor(ThreadLog& log) noexcept {
  return log.data + log.committed.load(std::memory_order_relaxed);
}
inline void commit(ThreadLog& log, const uint8_t* end) noexcept {
  log.committed.store(static_cast<uint32_t>(end - log.data), std::memory_order_release);
}

// Sends the owner's published bytes now.
void flush_own(ThreadLog& log) noexcept;

// Sends every thread's published bytes; a log whose flag another thread holds is skipped when
// `wait` is false (periodic flush) and waited for when true (exit, exec, abort).
void flush_all(bool wait) noexcept;

// Sends the published bytes of every log not flushed for `age_ns` (the flusher's round); a log
// another thread is flushing is skipped.
void flush_idle(uint64_t age_ns) noexcept;

// Thread exit: flush and give the log back for reuse.
void release_thread_log(ThreadLog* log) noexcept;

// fork(), in the child: only the calling thread survives. Its log restarts its stream; the
// logs of the other threads (copies of the parent's) are emptied and freed for reuse.
void thread_logs_after_fork_child() noexcept;

// Memory held by the logs, for the tracer's own footprint.
size_t thread_log_bytes() noexcept;

}  // namespace memdx::trace
