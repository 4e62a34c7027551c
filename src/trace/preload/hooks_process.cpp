// The lifecycle hooks: exec in all its forms and posix_spawn (flush, then carry the tracer into
// the new image), vfork (made a fork: a vforked child shares its parent's memory and would write
// into the parent's buffers), dlopen (RTLD_DEEPBIND) and dlclose (module map, stack epochs,
// unwinder cache), _exit and abort (final flush), the library's constructor and destructor; then
// the descriptor hooks that keep the tracer's socket open and the namespace hooks that pause its
// flusher thread. fork itself is handled by pthread_atfork handlers (tracer.cpp), which also cover
// forks from inside libc.
#include <dlfcn.h>
#include <linux/close_range.h>
#include <sched.h>
#include <stdarg.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include "trace/preload/deep_bind.h"
#include "trace/preload/exec_environment.h"
#include "trace/preload/flusher.h"
#include "trace/preload/modules.h"
#include "trace/preload/real.h"
#include "trace/preload/stream.h"
#include "trace/preload/tracer.h"

#define MEMDX_EXPORT extern "C" __attribute__((visibility("default")))

extern char** environ;

namespace {

using memdx::trace::ExecEnvironment;
using memdx::trace::in_tracer;
using memdx::trace::real;

constexpr size_t kMaxListArguments = 4096;

void before_exec() noexcept {
  memdx::trace::resolve_real_functions();
  if (in_tracer) return;
  in_tracer = true;
  memdx::trace::finish_process(memdx::trace::wire::EndReason::kExec, 0);
  in_tracer = false;
}

template <typename Exec>
int exec_with_tracer(char* const* envp, Exec&& exec) {
  before_exec();
  ExecEnvironment environment = memdx::trace::environment_with_tracer(envp);
  int result = exec(environment.envp);
  int saved_errno = errno;
  memdx::trace::release_environment(environment);
  errno = saved_errno;
  return result;
}

// execl-style argument lists into an array on the stack; false (errno E2BIG) when there are too
// many.
bool collect_arguments(const char* first, va_list& args, const char** argv) noexcept {
  size_t count = 0;
  argv[count++] = first;
  while (argv[count - 1] != nullptr) {
    if (count == kMaxListArguments) {
      errno = E2BIG;
      return false;
    }
    argv[count++] = va_arg(args, const char*);
  }
  return true;
}

}  // namespace

MEMDX_EXPORT int execve(const char* path, char* const argv[], char* const envp[]) {
  return exec_with_tracer(envp, [&](char** env) { return real.execve(path, argv, env); });
}

MEMDX_EXPORT int execv(const char* path, char* const argv[]) {
  return exec_with_tracer(environ, [&](char** env) { return real.execve(path, argv, env); });
}

MEMDX_EXPORT int execvpe(const char* file, char* const argv[], char* const envp[]) {
  return exec_with_tracer(envp, [&](char** env) { return real.execvpe(file, argv, env); });
}

MEMDX_EXPORT int execvp(const char* file, char* const argv[]) {
  return exec_with_tracer(environ, [&](char** env) { return real.execvpe(file, argv, env); });
}

MEMDX_EXPORT int fexecve(int fd, char* const argv[], char* const envp[]) {
  return exec_with_tracer(envp, [&](char** env) { return real.fexecve(fd, argv, env); });
}

MEMDX_EXPORT int execl(const char* path, const char* arg, ...) {
  const char* argv[kMaxListArguments];
  va_list args;
  va_start(args, arg);
  bool fits = collect_arguments(arg, args, argv);
  va_end(args);
  return fits ? execv(path, const_cast<char* const*>(argv)) : -1;
}

MEMDX_EXPORT int execlp(const char* file, const char* arg, ...) {
  const char* argv[kMaxListArguments];
  va_list args;
  va_start(args, arg);
  bool fits = collect_arguments(arg, args, argv);
  va_end(args);
  return fits ? execvp(file, const_cast<char* const*>(argv)) : -1;
}

MEMDX_EXPORT int execle(const char* path, const char* arg, ...) {
  const char* argv[kMaxListArguments];
  va_list args;
  va_start(args, arg);
  bool fits = collect_arguments(arg, args, argv);
  char* const* envp = fits ? va_arg(args, char* const*) : nullptr;
  va_end(args);
  if (!fits) return -1;
  return execve(path, const_cast<char* const*>(argv), envp);
}

MEMDX_EXPORT int posix_spawn(pid_t* pid, const char* path, const posix_spawn_file_actions_t* actions,
                             const posix_spawnattr_t* attributes, char* const argv[], char* const envp[]) {
  memdx::trace::resolve_real_functions();
  ExecEnvironment environment = memdx::trace::environment_with_tracer(envp);
  int result = real.posix_spawn(pid, path, actions, attributes, argv, environment.envp);
  memdx::trace::release_environment(environment);
  return result;
}

MEMDX_EXPORT int posix_spawnp(pid_t* pid, const char* file, const posix_spawn_file_actions_t* actions,
                              const posix_spawnattr_t* attributes, char* const argv[], char* const envp[]) {
  memdx::trace::resolve_real_functions();
  ExecEnvironment environment = memdx::trace::environment_with_tracer(envp);
  int result = real.posix_spawnp(pid, file, actions, attributes, argv, environment.envp);
  memdx::trace::release_environment(environment);
  return result;
}

MEMDX_EXPORT pid_t vfork() {
  memdx::trace::resolve_real_functions();
  return real.fork();
}

namespace {

// A module scan from a hook; the guard is set around the scan only.
void scan_from_hook() noexcept {
  in_tracer = true;
  memdx::trace::scan_modules_from_hook();
  in_tracer = false;
}

// dlopen with RTLD_DEEPBIND where the tracer may be the caller (deep_bind.h): the library keeps
// its own bindings, and its calls of the interposed functions are pointed back at the tracer.
__attribute__((noinline)) void* open_deep_bound(const char* file, int flags) {
  scan_from_hook();  // what was loaded before is not this call's
  const uint64_t mark = memdx::trace::modules_mark();
  void* handle = real.dlopen(file, flags);  // the constructors' allocations are traced as usual
  if (!handle) return nullptr;
  int saved_errno = errno;
  in_tracer = true;
  memdx::trace::route_modules_loaded_since(mark, handle);
  in_tracer = false;
  errno = saved_errno;
  return handle;
}

}  // namespace

// The loader takes dlopen's return address for the caller whose RUNPATH, RPATH, $ORIGIN and
// namespace apply. So dlopen is always the last call here, a sibling call that returns straight
// to the program (the test of a library found through the program's RUNPATH would fail if it
// were not), unless deep_bind.h's conditions say the caller makes no difference. New modules
// need nothing here: the first stack that runs through one records it (modules.h).
MEMDX_EXPORT void* dlopen(const char* file, int flags) {
  memdx::trace::resolve_real_functions();
  if (!in_tracer && memdx::trace::tracing_active()) {
    if ((flags & RTLD_DEEPBIND) && memdx::trace::dlopen_caller_independent(file, __builtin_return_address(0))) {
      return open_deep_bound(file, flags);
    }
    scan_from_hook();  // unloads the hooks did not see (the C library's own dlclose) go out first
  }
  return real.dlopen(file, flags);
}

// The library's destructors run inside dlclose: what they allocate and free is the program's and
// is recorded like any other call (the guard covers only the scans). The scan after it sends the
// unloads, with a seq after every free of the destructors, and starts a new epoch of stack ids
// and unwind rules.
MEMDX_EXPORT int dlclose(void* handle) {
  memdx::trace::resolve_real_functions();
  if (in_tracer || !memdx::trace::tracing_active()) return real.dlclose(handle);
  scan_from_hook();  // a module loaded since the last scan is named before it goes
  int result = real.dlclose(handle);
  scan_from_hook();
  return result;
}

MEMDX_EXPORT void _exit(int status) {
  memdx::trace::resolve_real_functions();
  if (!in_tracer) {
    in_tracer = true;
    memdx::trace::finish_process(memdx::trace::wire::EndReason::kExit, status);
  }
  real.exit_now(status);
  __builtin_unreachable();
}

MEMDX_EXPORT void _Exit(int status) {
  _exit(status);
}

MEMDX_EXPORT void abort() {
  memdx::trace::resolve_real_functions();
  if (!in_tracer) {
    in_tracer = true;
    memdx::trace::finish_process(memdx::trace::wire::EndReason::kAbort, 0);
    in_tracer = false;
  }
  real.abort();
  __builtin_unreachable();
}

// tracer_init may have run earlier, from another library's constructor that allocated; the
// flusher starts here in any case, where no lock of libc's can be held.
__attribute__((constructor(101))) static void memdx_trace_start() {
  memdx::trace::tracer_init();
  memdx::trace::flusher_start();
}

// Runs among the program's other destructors: later frees still go out, one batch each.
__attribute__((destructor(101))) static void memdx_trace_stop() {
  if (in_tracer) return;
  in_tracer = true;
  memdx::trace::finish_process(memdx::trace::wire::EndReason::kExit, 0);
  in_tracer = false;
}

// ---- The tracer's socket survives a program that closes every descriptor ------------------
//
// Daemons close every descriptor they did not open (a loop of close(), close_range(), closefrom())
// and may dup2() onto any number. The tracer's two (its socket, /proc/self/statm) stay: closing
// one is answered with success and nothing done, a range is closed around them, and a dup2 onto
// one's number moves it first. Without this the trace would stop at the daemon's start, and its
// exit would look like a kill.

namespace {

using memdx::trace::kMaxTracerDescriptors;
using memdx::trace::tracer_descriptors;

// close_range over [first, last] but the tracer's descriptors in it (ascending);
// CLOSE_RANGE_UNSHARE goes with the first call only.
int close_range_around(unsigned int first, unsigned int last, int flags) {
  int kept[kMaxTracerDescriptors];
  const size_t count = tracer_descriptors(kept);
  unsigned int from = first;
  for (size_t i = 0; i < count && from <= last; ++i) {
    const auto keep = static_cast<unsigned int>(kept[i]);
    if (keep < from || keep > last) continue;
    if (keep > from) {
      if (int result = real.close_range(from, keep - 1, flags); result != 0) return result;
      flags &= ~CLOSE_RANGE_UNSHARE;
    }
    from = keep + 1;
    if (from == 0) return 0;  // kept ~0u itself
  }
  return from <= last ? real.close_range(from, last, flags) : 0;
}

bool protects(int fd) noexcept {
  int kept[kMaxTracerDescriptors];
  const size_t count = tracer_descriptors(kept);
  for (size_t i = 0; i < count; ++i) {
    if (kept[i] == fd) return true;
  }
  return false;
}

}  // namespace

MEMDX_EXPORT int close(int fd) {
  memdx::trace::resolve_real_functions();
  if (fd >= 0 && protects(fd)) return 0;
  return real.close(fd);
}

MEMDX_EXPORT int close_range(unsigned int first, unsigned int last, int flags) {
  memdx::trace::resolve_real_functions();
  if (!real.close_range) {
    errno = ENOSYS;
    return -1;
  }
  // Marking the range close-on-exec is harmless: the tracer's descriptors already are.
  if (flags & CLOSE_RANGE_CLOEXEC) return real.close_range(first, last, flags);
  return close_range_around(first, last, flags);
}

MEMDX_EXPORT void closefrom(int lowest) {
  memdx::trace::resolve_real_functions();
  if (lowest >= 0 && real.close_range && close_range_around(static_cast<unsigned int>(lowest), ~0u, 0) == 0) return;
  if (real.closefrom) real.closefrom(lowest);
}

MEMDX_EXPORT int dup2(int old_fd, int new_fd) {
  memdx::trace::resolve_real_functions();
  if (old_fd != new_fd) memdx::trace::tracer_move_descriptor_off(new_fd);
  return real.dup2(old_fd, new_fd);
}

MEMDX_EXPORT int dup3(int old_fd, int new_fd, int flags) {
  memdx::trace::resolve_real_functions();
  if (old_fd != new_fd) memdx::trace::tracer_move_descriptor_off(new_fd);
  return real.dup3(old_fd, new_fd, flags);
}

// ---- A moment of single-threadedness for the program -------------------------------------
//
// unshare() of a user namespace (or of CLONE_THREAD, CLONE_SIGHAND, CLONE_VM) and setns() into a
// user or mount namespace fail with EINVAL in a process with more than one thread. The flusher
// thread is stopped around them, so that a single-threaded program stays one to the kernel.

namespace {

constexpr int kNeedsOneThread = CLONE_NEWUSER | CLONE_THREAD | CLONE_SIGHAND | CLONE_VM | CLONE_NEWNS | CLONE_FS;

template <typename Call>
int with_flusher_stopped(Call&& call) {
  bool stopped = memdx::trace::flusher_stop();
  int result = call();
  // The kernel drops an exiting thread's pid a moment before its share of the signal handlers
  // (__exit_signal: __unhash_process, then __cleanup_sighand): a call that lands between the two
  // still sees a second user and fails with EINVAL. That EINVAL is the flusher's, not the
  // program's: try again for up to 50 ms, so that the program sees what it would see alone.
  for (int attempt = 0; stopped && result != 0 && errno == EINVAL && attempt < 50; ++attempt) {
    timespec pause{0, 1'000'000};
    ::nanosleep(&pause, nullptr);
    result = call();
  }
  int saved_errno = errno;
  memdx::trace::flusher_start();
  errno = saved_errno;
  return result;
}

}  // namespace

MEMDX_EXPORT int unshare(int flags) {
  memdx::trace::resolve_real_functions();
  if (!(flags & kNeedsOneThread)) return real.unshare(flags);
  return with_flusher_stopped([&] { return real.unshare(flags); });
}

MEMDX_EXPORT int setns(int fd, int namespace_type) {
  memdx::trace::resolve_real_functions();
  return with_flusher_stopped([&] { return real.setns(fd, namespace_type); });
}
