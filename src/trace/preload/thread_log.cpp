#include "trace/preload/thread_log.h"

#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "trace/format/wire.h"
#include "trace/preload/real.h"
#include "trace/preload/stream.h"
#include "trace/preload/tracer.h"
#include "trace/preload/unwind.h"

namespace memdx::trace {
namespace {

std::atomic<ThreadLog*> registry{nullptr};
std::atomic<size_t> log_count{0};
__thread ThreadLog* this_thread_log __attribute__((tls_model("initial-exec"))) = nullptr;

void lock(ThreadLog& log) noexcept {
  while (log.flushing.exchange(true, std::memory_order_acquire)) sched_yield();
}
void unlock(ThreadLog& log) noexcept {
  log.flushing.store(false, std::memory_order_release);
}

void reset_encoder(ThreadLog& log, pid_t tid) noexcept {
  log.tid = tid;
  log.previous_seq = 0;
  log.previous_address = 0;
  log.alloc_ordinal = 0;
  std::memset(log.recent_address, 0, sizeof(log.recent_address));
  log.last_flush_ns.store(coarse_ns(), std::memory_order_relaxed);
  log.events_until_clock_check = 0;
  log.first_batch = true;
  start_sampling(log);
}

// Sends [flushed, committed) as one batch; the caller holds the flag.
void send_published(ThreadLog& log) noexcept {
  uint32_t end = log.committed.load(std::memory_order_acquire);
  if (end <= log.flushed) return;
  iovec piece{log.data + log.flushed, end - log.flushed};
  auto kind = log.first_batch ? wire::BatchKind::kThreadStart : wire::BatchKind::kThread;
  if (stream_send(kind, log.tid, &piece, 1)) {
    log.first_batch = false;
  } else {
    stop_tracing();
  }
  log.flushed = end;
}

ThreadLog* reuse_free_log() noexcept {
  for (ThreadLog* log = registry.load(std::memory_order_acquire); log; log = log->next) {
    bool idle = false;
    if (log->in_use.compare_exchange_strong(idle, true, std::memory_order_acq_rel)) return log;
  }
  return nullptr;
}

ThreadLog* map_new_log() noexcept {
  void* memory = real.mmap(nullptr, sizeof(ThreadLog), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) return nullptr;
  auto* log = static_cast<ThreadLog*>(memory);  // zero-filled: a valid empty log
  log->in_use.store(true, std::memory_order_relaxed);
  ThreadLog* head = registry.load(std::memory_order_relaxed);
  do {
    log->next = head;
  } while (!registry.compare_exchange_weak(head, log, std::memory_order_acq_rel));
  log_count.fetch_add(1, std::memory_order_relaxed);
  return log;
}

}  // namespace

ThreadLog* current_thread_log() noexcept {
  if (this_thread_log) return this_thread_log;
  ThreadLog* log = reuse_free_log();
  if (!log) log = map_new_log();
  if (!log) return nullptr;
  lock(*log);
  log->committed.store(0, std::memory_order_relaxed);
  log->flushed = 0;
  reset_encoder(*log, static_cast<pid_t>(::syscall(SYS_gettid)));
  unlock(*log);
  this_thread_log = log;
  register_thread_exit(log);
  // Stack bounds now, outside any signal handler: the first unwind may then run inside one.
  unwind_thread_init();
  return log;
}

bool reserve(ThreadLog& log, size_t bytes) noexcept {
  if (bytes > kThreadBufferBytes) return false;
  if (log.committed.load(std::memory_order_relaxed) + bytes <= kThreadBufferBytes) return true;
  lock(log);
  send_published(log);
  log.committed.store(0, std::memory_order_relaxed);
  log.flushed = 0;
  unlock(log);
  log.last_flush_ns.store(coarse_ns(), std::memory_order_relaxed);
  return stream_is_open();
}

void flush_own(ThreadLog& log) noexcept {
  lock(log);
  send_published(log);
  unlock(log);
  log.last_flush_ns.store(coarse_ns(), std::memory_order_relaxed);
}

void flush_idle(uint64_t age_ns) noexcept {
  const uint64_t now = coarse_ns();
  for (ThreadLog* log = registry.load(std::memory_order_acquire); log; log = log->next) {
    if (now - log->last_flush_ns.load(std::memory_order_relaxed) < age_ns) continue;
    if (log->flushing.exchange(true, std::memory_order_acquire)) continue;
    send_published(*log);
    unlock(*log);
    log->last_flush_ns.store(now, std::memory_order_relaxed);
  }
}

void flush_all(bool wait) noexcept {
  for (ThreadLog* log = registry.load(std::memory_order_acquire); log; log = log->next) {
    if (wait) {
      lock(*log);
    } else if (log->flushing.exchange(true, std::memory_order_acquire)) {
      continue;
    }
    send_published(*log);
    unlock(*log);
  }
}

void release_thread_log(ThreadLog* log) noexcept {
  if (!log) return;
  flush_own(*log);
  if (this_thread_log == log) this_thread_log = nullptr;
  log->in_use.store(false, std::memory_order_release);
}

void thread_logs_after_fork_child() noexcept {
  pid_t tid = static_cast<pid_t>(::syscall(SYS_gettid));
  for (ThreadLog* log = registry.load(std::memory_order_relaxed); log; log = log->next) {
    log->flushing.store(false, std::memory_order_relaxed);
    log->committed.store(0, std::memory_order_relaxed);
    log->flushed = 0;
    if (log == this_thread_log) {
      reset_encoder(*log, tid);
    } else {
      log->in_use.store(false, std::memory_order_relaxed);
    }
  }
}

size_t thread_log_bytes() noexcept {
  return log_count.load(std::memory_order_relaxed) * sizeof(ThreadLog);
}

}  // namespace memdx::trace
