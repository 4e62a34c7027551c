// memdx_tracee_realloc_fail: realloc asked for more than the machine has fails and leaves its
// block where it was. The program keeps one such block to the end (a leak of kKeptBytes) and
// frees the other after its failed realloc.
#include <cstdint>
#include <cstdlib>

#include "tracee_common.h"

namespace {

constexpr size_t kKeptBytes = 10;
constexpr size_t kFreedBytes = 20;
// PTRDIFF_MAX bytes: past glibc's own size check, refused only when no mapping that large exists.
volatile size_t huge_bytes = SIZE_MAX / 2;
void* kept;

// Says whether realloc failed and the block stayed.
bool grow_fails(void* block) {
  void* grown = std::realloc(block, huge_bytes);
  if (grown == nullptr) return true;
  std::free(grown);
  return false;
}

}  // namespace

extern "C" __attribute__((noinline)) void* keep_after_failed_realloc() {
  void* block = std::malloc(kKeptBytes);  // site: keep_after_failed_realloc
  memdx::tracee::escape(block);
  return block;
}

extern "C" __attribute__((noinline)) void* free_after_failed_realloc() {
  void* block = std::malloc(kFreedBytes);  // site: free_after_failed_realloc
  memdx::tracee::escape(block);
  return block;
}

int main() {
  kept = keep_after_failed_realloc();
  if (!grow_fails(kept)) return 2;
  void* freed = free_after_failed_realloc();
  if (!grow_fails(freed)) return 2;
  std::free(freed);
  memdx::tracee::escape(kept);
  memdx::tracee::say("failed twice");
  return 0;
}
