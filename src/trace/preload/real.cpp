#include "trace/preload/real.h"

#include <dlfcn.h>
#include <sys/mman.h>

#include <atomic>
#include <cstdint>

namespace memdx::trace {

RealFunctions real;

namespace {

// dlsym and the loader's error strings need a few hundred bytes; 64 KiB is ample.
alignas(64) unsigned char bootstrap_arena[64 * 1024];
std::atomic<size_t> bootstrap_used{0};
std::atomic<int> resolve_state{0};  // 0 not yet, 1 in progress, 2 done

template <typename Fn>
void find(Fn*& slot, const char* name) {
  slot = reinterpret_cast<Fn*>(dlsym(RTLD_NEXT, name));
}

}  // namespace

void* bootstrap_alloc(size_t size, size_t alignment) noexcept {
  if (alignment < 16) alignment = 16;
  size_t used = bootstrap_used.load(std::memory_order_relaxed);
  for (;;) {
    size_t start = (used + alignment - 1) & ~(alignment - 1);
    if (start + size > sizeof(bootstrap_arena)) return nullptr;
    if (bootstrap_used.compare_exchange_weak(used, start + size)) return bootstrap_arena + start;
  }
}

bool is_bootstrap_block(const void* ptr) noexcept {
  auto at = reinterpret_cast<uintptr_t>(ptr);
  auto base = reinterpret_cast<uintptr_t>(bootstrap_arena);
  return at >= base && at < base + sizeof(bootstrap_arena);
}

size_t bootstrap_bytes_after(const void* ptr, size_t wanted) noexcept {
  if (!is_bootstrap_block(ptr)) return 0;
  size_t available =
      sizeof(bootstrap_arena) - static_cast<size_t>(static_cast<const unsigned char*>(ptr) - bootstrap_arena);
  return wanted < available ? wanted : available;
}

void* map_zeroed_once(std::atomic<void*>& mapping, size_t bytes) noexcept {
  void* ready = mapping.load(std::memory_order_acquire);
  if (ready) return ready;
  void* memory = real.mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (memory == MAP_FAILED) return nullptr;
  if (!mapping.compare_exchange_strong(ready, memory, std::memory_order_acq_rel)) {
    real.munmap(memory, bytes);
    return ready;
  }
  return memory;
}

void resolve_real_functions() noexcept {
  if (resolve_state.load(std::memory_order_acquire) == 2) return;
  int expected = 0;
  if (!resolve_state.compare_exchange_strong(expected, 1)) {
    // Another thread resolves, or this one re-entered through dlsym's own allocation; the
    // callers fall back to the bootstrap arena while malloc is still null.
    return;
  }
  find(real.malloc, "malloc");
  find(real.free, "free");
  find(real.calloc, "calloc");
  find(real.realloc, "realloc");
  find(real.reallocarray, "reallocarray");
  find(real.posix_memalign, "posix_memalign");
  find(real.aligned_alloc, "aligned_alloc");
  find(real.memalign, "memalign");
  find(real.valloc, "valloc");
  find(real.pvalloc, "pvalloc");
  find(real.mmap, "mmap");
  find(real.munmap, "munmap");
  find(real.mprotect, "mprotect");
  find(real.mremap, "mremap");
  find(real.dlopen, "dlopen");
  find(real.dlclose, "dlclose");
  find(real.execve, "execve");
  find(real.execvpe, "execvpe");
  find(real.fexecve, "fexecve");
  find(real.posix_spawn, "posix_spawn");
  find(real.posix_spawnp, "posix_spawnp");
  find(real.fork, "fork");
  find(real.close, "close");
  find(real.close_range, "close_range");
  find(real.closefrom, "closefrom");
  find(real.dup2, "dup2");
  find(real.dup3, "dup3");
  find(real.unshare, "unshare");
  find(real.setns, "setns");
  find(real.exit_now, "_exit");
  find(real.abort, "abort");
  resolve_state.store(2, std::memory_order_release);
}

}  // namespace memdx::trace
