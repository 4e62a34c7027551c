// memdx_tracee_paths: one allocation site, make_buffer(), reached by three paths that each hold
// something else: keep_forever() keeps 10 blocks of 1,000 B to the end, burst() holds 50 blocks of
// 4,096 B at once and frees them (the heap's peak), churn() allocates and frees 5,000 blocks of
// 64 B right away (temporaries). Besides it, library_cache() keeps 3,000 B and lose_this() 700 B:
// what a suppression file hides. Prints "paths".
#include <cstdlib>

#include "tracee_common.h"

extern "C" __attribute__((noinline)) void* make_buffer(size_t bytes) {
  void* block = std::malloc(bytes);  // site: make_buffer
  memdx::tracee::escape(block);
  return block;
}

extern "C" __attribute__((noinline)) void keep_forever() {
  for (int i = 0; i < 10; ++i) make_buffer(1000);
  memdx::tracee::escape(nullptr);  // not a tail call: this frame stays on the stack
}

extern "C" __attribute__((noinline)) void burst() {
  void* blocks[50];
  for (void*& block : blocks) block = make_buffer(4096);
  for (void* block : blocks) std::free(block);
}

extern "C" __attribute__((noinline)) void churn() {
  for (int i = 0; i < 5000; ++i) std::free(make_buffer(64));
}

extern "C" __attribute__((noinline)) void* library_cache() {
  void* block = std::malloc(3000);  // site: library_cache
  memdx::tracee::escape(block);
  return block;
}

extern "C" __attribute__((noinline)) void* lose_this() {
  void* block = std::malloc(700);  // site: lose_this
  memdx::tracee::escape(block);
  return block;
}

int main() {
  library_cache();
  lose_this();
  keep_forever();
  burst();
  churn();
  memdx::tracee::say("paths");
  return 0;
}
