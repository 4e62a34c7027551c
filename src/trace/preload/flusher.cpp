#include "trace/preload/flusher.h"

#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

#include "trace/preload/thread_log.h"
#include "trace/preload/tracer.h"

namespace memdx::trace {
namespace {

constexpr long kWakeIntervalNs = 50'000'000;
// A buffer whose last flush is this old is sent by the flusher: with the 50 ms wake-up, an event
// waits at most about 150 ms.
constexpr uint64_t kIdleFlushAgeNs = 100'000'000;
constexpr size_t kStackBytes = size_t{64} * 1024;

pthread_mutex_t control = PTHREAD_MUTEX_INITIALIZER;  // start and stop
pthread_t thread;
bool running = false;                     // under control
std::atomic<uint32_t> stop_requested{0};  // futex word
std::atomic<pid_t> thread_id{0};          // the kernel's id of the running flusher

// pthread_join returns once the kernel has cleared the thread's id word, which it does before it
// removes the thread from the process (release_task, a little later in the exit). Until then the
// kernel still counts the process as threaded and unshare() fails with EINVAL. The thread is gone
// when a signal 0 sent to it finds no such thread. Bounded: never wait more than about 1 s.
void wait_until_gone(pid_t tid) noexcept {
  if (tid <= 0) return;
  const pid_t pid = static_cast<pid_t>(::syscall(SYS_getpid));
  for (int attempt = 0; attempt < 10'000; ++attempt) {
    if (::syscall(SYS_tgkill, pid, tid, 0) != 0) return;  // ESRCH: released
    timespec pause{0, 100'000};
    ::nanosleep(&pause, nullptr);
  }
}

void* flusher_main(void*) {
  in_tracer = true;  // for good: nothing this thread does is the program's
  ::prctl(PR_SET_NAME, "memdx-flush", 0, 0, 0);
  thread_id.store(static_cast<pid_t>(::syscall(SYS_gettid)), std::memory_order_release);
  while (stop_requested.load(std::memory_order_acquire) == 0) {
    timespec wait{0, kWakeIntervalNs};
    ::syscall(SYS_futex, &stop_requested, FUTEX_WAIT_PRIVATE, 0, &wait, nullptr, 0);
    if (stop_requested.load(std::memory_order_acquire) != 0) break;
    if (tracing_active()) flush_idle(kIdleFlushAgeNs);
  }
  return nullptr;
}

void start_locked() noexcept {
  if (running) return;
  stop_requested.store(0, std::memory_order_release);
  thread_id.store(0, std::memory_order_release);
  pthread_attr_t attributes;
  if (pthread_attr_init(&attributes) != 0) return;
  pthread_attr_setstacksize(&attributes, kStackBytes);
  // The new thread inherits this mask: every signal blocked, so none is delivered to it.
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  const bool guard = in_tracer;
  in_tracer = true;  // pthread_create's own allocations are not the program's
  running = pthread_create(&thread, &attributes, flusher_main, nullptr) == 0;
  in_tracer = guard;
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  pthread_attr_destroy(&attributes);
}

}  // namespace

void flusher_start() noexcept {
  if (!tracing_active()) return;
  pthread_mutex_lock(&control);
  start_locked();
  pthread_mutex_unlock(&control);
}

bool flusher_stop() noexcept {
  bool stopped = false;
  int cancel_state = 0;
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);  // pthread_join is a cancellation point
  pthread_mutex_lock(&control);
  if (running) {
    stop_requested.store(1, std::memory_order_release);
    ::syscall(SYS_futex, &stop_requested, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
    const bool guard = in_tracer;
    in_tracer = true;
    pthread_join(thread, nullptr);
    // The thread stored its id before its first wait, and it has run to its end: the id is set.
    wait_until_gone(thread_id.load(std::memory_order_acquire));
    in_tracer = guard;
    running = false;
    stopped = true;
  }
  pthread_mutex_unlock(&control);
  pthread_setcancelstate(cancel_state, nullptr);
  return stopped;
}

void flusher_after_fork_child() noexcept {
  control = PTHREAD_MUTEX_INITIALIZER;
  running = false;
  thread_id.store(0, std::memory_order_relaxed);
}

}  // namespace memdx::trace
