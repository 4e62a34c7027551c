// The allocation hooks: the malloc family and mmap/munmap/mremap. Each checks the thread's
// guard first, calls the real function, and records the result, freeing after recording so the
// sequence number of a free always follows the allocation it frees.
//
// C++ operator new and delete are not interposed: libstdc++ implements every variant on top of
// malloc, aligned_alloc and free, so they arrive here, with operator new's frame on the stack.
#include <errno.h>
#include <stdarg.h>
#include <sys/mman.h>

#include <cstring>

#include "trace/preload/real.h"
#include "trace/preload/tracer.h"

#define MEMDX_EXPORT extern "C" __attribute__((visibility("default")))

using memdx::trace::in_tracer;
using memdx::trace::real;
using memdx::trace::record_alloc;
using memdx::trace::record_free;
using memdx::trace::tracing_active;

namespace {

// Before dlsym has given the real functions (dlsym itself allocates), a static arena serves.
bool have_real() noexcept {
  if (real.malloc) return true;
  memdx::trace::resolve_real_functions();
  return real.malloc != nullptr;
}

bool should_record() noexcept {
  if (in_tracer) return false;
  return tracing_active() || memdx::trace::start_tracing_if_due();
}

// Records an allocation the real allocator made; the guard is set around it. Always inlined,
// like the *_impl functions: the unwinder skips a fixed number of frames above the hook.
__attribute__((always_inline)) inline void* recorded(void* ptr, size_t size) noexcept {
  if (ptr) record_alloc(ptr, size);
  in_tracer = false;
  return ptr;
}

}  // namespace

MEMDX_EXPORT void* malloc(size_t size) {
  if (!have_real()) return memdx::trace::bootstrap_alloc(size, 16);
  if (!should_record()) return real.malloc(size);
  in_tracer = true;
  return recorded(real.malloc(size), size);
}

MEMDX_EXPORT void free(void* ptr) {
  if (!ptr || memdx::trace::is_bootstrap_block(ptr)) return;
  if (!have_real()) return;
  if (!should_record()) return real.free(ptr);
  in_tracer = true;
  record_free(ptr);
  real.free(ptr);
  in_tracer = false;
}

MEMDX_EXPORT void* calloc(size_t count, size_t size) {
  if (!have_real()) {
    size_t bytes = 0;
    if (__builtin_mul_overflow(count, size, &bytes)) return nullptr;
    return memdx::trace::bootstrap_alloc(bytes, 16);  // the arena is zero-filled static memory
  }
  if (!should_record()) return real.calloc(count, size);
  in_tracer = true;
  return recorded(real.calloc(count, size), count * size);
}

__attribute__((always_inline)) inline void* realloc_impl(void* ptr, size_t size) {
  if (ptr && memdx::trace::is_bootstrap_block(ptr)) {
    // Rare: a block from before start-up grows. Its size is unknown; copy what it can hold,
    // never reading past the arena.
    void* moved = malloc(size);
    if (moved) std::memcpy(moved, ptr, memdx::trace::bootstrap_bytes_after(ptr, size));
    return moved;
  }
  if (!have_real()) return memdx::trace::bootstrap_alloc(size, 16);
  if (!should_record()) return real.realloc(ptr, size);
  in_tracer = true;
  if (!ptr) return recorded(real.realloc(ptr, size), size);
  // The old block's free takes its seq now, before realloc may free it and another thread may be
  // given its address, but is recorded only when realloc did not fail: a null result for a
  // nonzero size leaves the block allocated. (For size 0 glibc frees the block and returns null.)
  uint64_t free_seq = memdx::trace::current_seq();
  void* moved = real.realloc(ptr, size);
  if (moved || size == 0) memdx::trace::record_free_at(ptr, free_seq);
  return recorded(moved, size);
}

MEMDX_EXPORT void* realloc(void* ptr, size_t size) {
  return realloc_impl(ptr, size);
}

MEMDX_EXPORT void* reallocarray(void* ptr, size_t count, size_t size) {
  size_t bytes = 0;
  if (__builtin_mul_overflow(count, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  return realloc_impl(ptr, bytes);
}

MEMDX_EXPORT int posix_memalign(void** out, size_t alignment, size_t size) {
  if (!have_real()) {
    *out = memdx::trace::bootstrap_alloc(size, alignment);
    return *out ? 0 : ENOMEM;
  }
  if (!should_record()) return real.posix_memalign(out, alignment, size);
  in_tracer = true;
  int result = real.posix_memalign(out, alignment, size);
  recorded(result == 0 ? *out : nullptr, size);
  return result;
}

MEMDX_EXPORT void* aligned_alloc(size_t alignment, size_t size) {
  if (!have_real()) return memdx::trace::bootstrap_alloc(size, alignment);
  if (!should_record()) return real.aligned_alloc(alignment, size);
  in_tracer = true;
  return recorded(real.aligned_alloc(alignment, size), size);
}

MEMDX_EXPORT void* memalign(size_t alignment, size_t size) {
  if (!have_real()) return memdx::trace::bootstrap_alloc(size, alignment);
  if (!should_record()) return real.memalign(alignment, size);
  in_tracer = true;
  return recorded(real.memalign(alignment, size), size);
}

MEMDX_EXPORT void* valloc(size_t size) {
  if (!have_real()) return memdx::trace::bootstrap_alloc(size, 4096);
  if (!should_record()) return real.valloc(size);
  in_tracer = true;
  return recorded(real.valloc(size), size);
}

MEMDX_EXPORT void* pvalloc(size_t size) {
  if (!have_real()) return memdx::trace::bootstrap_alloc(size, 4096);
  if (!should_record()) return real.pvalloc(size);
  in_tracer = true;
  return recorded(real.pvalloc(size), size);
}

__attribute__((always_inline)) inline void* mmap_impl(void* address, size_t length, int prot, int flags, int fd,
                                                      off_t offset) {
  if (!have_real()) return MAP_FAILED;
  if (!should_record()) return real.mmap(address, length, prot, flags, fd, offset);
  in_tracer = true;
  void* mapped = real.mmap(address, length, prot, flags, fd, offset);
  if (mapped != MAP_FAILED) memdx::trace::record_mmap(mapped, length, prot, flags, fd);
  in_tracer = false;
  return mapped;
}

MEMDX_EXPORT void* mmap(void* address, size_t length, int prot, int flags, int fd, off_t offset) {
  return mmap_impl(address, length, prot, flags, fd, offset);
}

MEMDX_EXPORT void* mmap64(void* address, size_t length, int prot, int flags, int fd, off_t offset) {
  return mmap_impl(address, length, prot, flags, fd, offset);
}

MEMDX_EXPORT int munmap(void* address, size_t length) {
  if (!have_real()) return -1;
  if (!should_record()) return real.munmap(address, length);
  in_tracer = true;
  memdx::trace::record_munmap(address, length);
  int result = real.munmap(address, length);
  in_tracer = false;
  return result;
}

// Reserving address space (PROT_NONE) and committing parts of it later (mprotect) is how JITs,
// garbage-collected heaps and arenas grow: only the accessible part is memory in use.
MEMDX_EXPORT int mprotect(void* address, size_t length, int prot) {
  if (!have_real()) {
    errno = ENOSYS;
    return -1;
  }
  if (!should_record()) return real.mprotect(address, length, prot);
  in_tracer = true;
  int result = real.mprotect(address, length, prot);
  if (result == 0) memdx::trace::record_protect(address, length, prot);
  in_tracer = false;
  return result;
}

MEMDX_EXPORT void* mremap(void* old_address, size_t old_length, size_t new_length, int flags, ...) {
  void* new_address = nullptr;
  if (flags & MREMAP_FIXED) {
    va_list args;
    va_start(args, flags);
    new_address = va_arg(args, void*);
    va_end(args);
  }
  if (!have_real()) return MAP_FAILED;
  if (!should_record()) return real.mremap(old_address, old_length, new_length, flags, new_address);
  in_tracer = true;
  void* moved = real.mremap(old_address, old_length, new_length, flags, new_address);
  if (moved != MAP_FAILED) {
    // The region's kind is not known here; the reader carries it over from the old region.
    memdx::trace::record_munmap(old_address, old_length);
    memdx::trace::record_mmap(moved, new_length, PROT_READ, 0, -1);
  }
  in_tracer = false;
  return moved;
}
