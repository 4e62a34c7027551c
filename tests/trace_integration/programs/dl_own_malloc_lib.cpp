// memdx_tracee_dl_own_malloc.so, loaded with RTLD_DEEPBIND: it brings its own malloc and free (a
// bump arena), which its own calls must keep reaching under the tracer as they do without it.
#include <cstddef>
#include <cstdint>

namespace {

alignas(16) unsigned char arena[64 * 1024];
size_t used = 0;

bool in_arena(const void* block) {
  auto at = reinterpret_cast<uintptr_t>(block);
  auto base = reinterpret_cast<uintptr_t>(arena);
  return at >= base && at < base + sizeof(arena);
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) void* malloc(size_t bytes) {
  size_t start = (used + 15) & ~size_t{15};
  if (start + bytes > sizeof(arena)) return nullptr;
  used = start + bytes;
  return arena + start;
}

__attribute__((visibility("default"))) void free(void*) {}

// Whether the library's own call of malloc reaches its own malloc.
__attribute__((noinline, visibility("default"))) const char* dl_own_allocator() {
  void* (*volatile allocate)(size_t) = &malloc;  // the call goes through the library's GOT
  void* block = allocate(100);
  return in_arena(block) ? "own" : "other";
}

}  // extern "C"
