// memdx_tracee_stress MODE [ARG]: one hard case for the tracer per mode, each with a named
// function whose allocations the test counts (stress_plan.h).
//   threads              16 threads allocating at once
//   signal               allocations inside a SIGUSR1 handler
//   dlopen PLUGIN        allocations in a dlopen'ed library, unloaded before exit
//   exit-thread          exit() from a second thread while main waits in pthread_join
//   abort                abort() after allocating
//   sigkill STATE_FILE   allocates slowly until killed; STATE_FILE holds {pid, mallocs started}
//   allocator-names      program functions named like allocator entry points
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <time.h>

#include <atomic>
#include <cstdlib>

#include "stress_plan.h"
#include "tracee_common.h"

namespace plan = memdx::tracee::stress;
using memdx::tracee::escape;

namespace {

pthread_barrier_t start_line;
void* signal_blocks[plan::kSignals];
std::atomic<int> signals_seen{0};
void* plugin_kept[plan::kPluginBlocks];
void* before_end_kept[plan::kBeforeEndBlocks];
void* slow_kept[plan::kSlowMaxBlocks];
void* named_kept[3][plan::kNamedBlocks];

// The state file of "sigkill", shared with the test.
struct SlowState {
  volatile int32_t pid;
  volatile int32_t mallocs_started;
};

}  // namespace

extern "C" {

__attribute__((noinline)) void stress_blocks(int) {
  void* previous = nullptr;
  for (int i = 0; i < plan::kStressPerThread; ++i) {
    void* block = std::malloc(plan::stress_size(i));  // site: stress_blocks
    escape(block);
    if (i % 2 == 1) {
      std::free(previous);
      std::free(block);
    }
    previous = block;
  }
}

// malloc is not async-signal-safe in general; here the signal only ever arrives from raise()
// in main, never while main is inside the allocator.
__attribute__((noinline)) void on_usr1(int) {
  int slot = signals_seen.fetch_add(1);
  signal_blocks[slot] = std::malloc(plan::kSignalBytes);  // site: on_usr1
}

__attribute__((noinline)) void before_the_end() {
  for (auto& block : before_end_kept) block = std::malloc(plan::kBeforeEndBytes);  // site: before_the_end
}

__attribute__((noinline)) void allocate_slowly(SlowState* state) {
  for (int i = 0; i < plan::kSlowMaxBlocks; ++i) {
    state->mallocs_started = i + 1;  // before the call: a kill may land inside it
    asm volatile("" : : : "memory");
    slow_kept[i] = std::malloc(plan::kSlowBytes);  // site: allocate_slowly
    if (i % 4 == 3) {
      timespec pause{0, 1'000'000};
      nanosleep(&pause, nullptr);
    }
  }
}

// The program's own functions, whatever their names begin with.
__attribute__((noinline)) void malloc_pool_blocks() {
  for (auto& block : named_kept[0]) block = std::malloc(plan::kNamedBytes);  // site: malloc_pool_blocks
}

__attribute__((noinline)) void calloc_table_blocks() {
  for (auto& block : named_kept[1]) block = std::calloc(1, plan::kNamedBytes);  // site: calloc_table_blocks
}

__attribute__((noinline)) void reallocate_buffers() {
  for (auto& block : named_kept[2]) block = std::realloc(nullptr, plan::kNamedBytes);  // site: reallocate_buffers
}

}  // extern "C"

namespace {

void* stress_thread(void* arg) {
  pthread_barrier_wait(&start_line);
  stress_blocks(static_cast<int>(reinterpret_cast<intptr_t>(arg)));
  return nullptr;
}

int run_threads() {
  pthread_barrier_init(&start_line, nullptr, plan::kStressThreads);
  pthread_t threads[plan::kStressThreads];
  for (int t = 0; t < plan::kStressThreads; ++t) {
    pthread_create(&threads[t], nullptr, stress_thread, reinterpret_cast<void*>(static_cast<intptr_t>(t)));
  }
  for (pthread_t thread : threads) pthread_join(thread, nullptr);
  return 0;
}

int run_signal() {
  struct sigaction action {};
  action.sa_handler = on_usr1;
  sigemptyset(&action.sa_mask);
  sigaction(SIGUSR1, &action, nullptr);
  for (int i = 0; i < plan::kSignals; ++i) raise(SIGUSR1);
  escape(signal_blocks);
  return signals_seen.load() == plan::kSignals ? 0 : 1;
}

int run_dlopen(const char* plugin) {
  void* library = dlopen(plugin, RTLD_NOW | RTLD_LOCAL);
  if (!library) return 2;
  auto* fill = reinterpret_cast<void (*)(void**)>(dlsym(library, "plugin_blocks"));
  if (!fill) return 3;
  fill(plugin_kept);
  escape(plugin_kept);
  return dlclose(library) == 0 ? 0 : 4;
}

void* exit_from_thread(void*) {
  std::exit(plan::kExitThreadCode);
}

int run_exit_thread() {
  before_the_end();
  escape(before_end_kept);
  pthread_t thread;
  pthread_create(&thread, nullptr, exit_from_thread, nullptr);
  pthread_join(thread, nullptr);  // never returns: the thread ends the process
  return 1;
}

int run_abort() {
  before_the_end();
  escape(before_end_kept);
  std::abort();
}

int run_sigkill(const char* state_path) {
  int fd = ::open(state_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0 || ::ftruncate(fd, sizeof(SlowState)) != 0) return 2;
  void* mapped = ::mmap(nullptr, sizeof(SlowState), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (mapped == MAP_FAILED) return 2;
  auto* state = static_cast<SlowState*>(mapped);
  state->mallocs_started = 0;
  state->pid = static_cast<int32_t>(::getpid());
  allocate_slowly(state);
  escape(slow_kept);
  return 0;  // only when nobody killed it in time
}

int run_allocator_names() {
  malloc_pool_blocks();
  calloc_table_blocks();
  reallocate_buffers();
  escape(named_kept);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "threads") return run_threads();
  if (mode == "signal") return run_signal();
  if (mode == "dlopen" && argc > 2) return run_dlopen(argv[2]);
  if (mode == "exit-thread") return run_exit_thread();
  if (mode == "abort") return run_abort();
  if (mode == "sigkill" && argc > 2) return run_sigkill(argv[2]);
  if (mode == "allocator-names") return run_allocator_names();
  memdx::tracee::say(
      "usage: memdx_tracee_stress threads|signal|dlopen PLUGIN|exit-thread|abort|sigkill STATE_FILE|allocator-names");
  return 64;
}
