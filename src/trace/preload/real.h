// The functions the hooks stand in front of, found with dlsym(RTLD_NEXT) so that whatever
// allocator the program uses (glibc, jemalloc, tcmalloc linked in) still serves its memory.
#pragma once

#include <spawn.h>
#include <sys/types.h>

#include <atomic>
#include <cstddef>

namespace memdx::trace {

struct RealFunctions {
  void* (*malloc)(size_t);
  void (*free)(void*);
  void* (*calloc)(size_t, size_t);
  void* (*realloc)(void*, size_t);
  void* (*reallocarray)(void*, size_t, size_t);
  int (*posix_memalign)(void**, size_t, size_t);
  void* (*aligned_alloc)(size_t, size_t);
  void* (*memalign)(size_t, size_t);
  void* (*valloc)(size_t);
  void* (*pvalloc)(size_t);
  void* (*mmap)(void*, size_t, int, int, int, off_t);
  int (*munmap)(void*, size_t);
  int (*mprotect)(void*, size_t, int);
  void* (*mremap)(void*, size_t, size_t, int, ...);
  void* (*dlopen)(const char*, int);
  int (*dlclose)(void*);
  int (*execve)(const char*, char* const[], char* const[]);
  int (*execvpe)(const char*, char* const[], char* const[]);
  int (*fexecve)(int, char* const[], char* const[]);
  int (*posix_spawn)(pid_t*, const char*, const posix_spawn_file_actions_t*, const posix_spawnattr_t*, char* const[],
                     char* const[]);
  int (*posix_spawnp)(pid_t*, const char*, const posix_spawn_file_actions_t*, const posix_spawnattr_t*, char* const[],
                      char* const[]);
  pid_t (*fork)();
  int (*close)(int);
  int (*close_range)(unsigned int, unsigned int, int);  // null before glibc 2.34
  void (*closefrom)(int);                               // null before glibc 2.34
  int (*dup2)(int, int);
  int (*dup3)(int, int, int);
  int (*unshare)(int);
  int (*setns)(int, int);
  void (*exit_now)(int);  // _exit
  void (*abort)();
};

// NOLINTNEXTLINE(bugprone-dynamic-static-initializers): a declaration; real.cpp defines it
extern RealFunctions real;

// Fills `real` once; later calls return at once. Allocations made by dlsym while it runs are
// served from a static arena (see is_bootstrap_block).
void resolve_real_functions() noexcept;

// The arena that serves allocations before `real` is filled (dlsym allocates). Blocks from it
// are never given back: free() just recognises and ignores them.
void* bootstrap_alloc(size_t size, size_t alignment) noexcept;
bool is_bootstrap_block(const void* ptr) noexcept;
// How many of `wanted` bytes from a bootstrap block at `ptr` lie inside the arena.
size_t bootstrap_bytes_after(const void* ptr, size_t wanted) noexcept;

// `bytes` of zeroed, lazily committed memory (MAP_NORESERVE) mapped on first use, once across
// threads: a thread that loses the race unmaps its copy. Null when mmap fails.
void* map_zeroed_once(std::atomic<void*>& mapping, size_t bytes) noexcept;

}  // namespace memdx::trace
