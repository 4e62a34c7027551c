// memdx_tracee_counts: kThreads threads start together at a barrier and each calls the named
// functions of counts_plan.h in order; every block a function keeps is allocated before any
// thread's peak blocks, and the peak blocks are freed only once every thread holds its own, so
// the process's peak is known exactly. Each allocating line carries a "site:" marker the test
// reads to check the reported line.
#include <malloc.h>
#include <pthread.h>

#include <cstdlib>

#include "counts_plan.h"
#include "tracee_common.h"

namespace plan = memdx::tracee::counts;
using memdx::tracee::escape;

namespace {

struct Object {
  char bytes[plan::kObjectBytes];
};
static_assert(sizeof(Object) == plan::kObjectBytes);

// What each thread keeps until exit: static storage, so nothing frees it at exit.
struct Kept {
  void* keep[plan::kKeepCount];
  void* grown;
  void* grown_array;
  void* calloced[plan::kCallocCount];
  void* memaligned[plan::kPosixMemalignCount];
  void* aligned[plan::kAlignedAllocCount];
  void* legacy[plan::kLegacyCount * 3];
  Object* objects[plan::kNewCount];
  int* arrays[plan::kNewCount];
};
Kept kept[plan::kThreads];
pthread_barrier_t start_line;
pthread_barrier_t all_at_peak;

}  // namespace

extern "C" {

__attribute__((noinline)) void keep_blocks(int t) {
  for (auto& block : kept[t].keep) block = std::malloc(plan::kKeepBytes);  // site: keep_blocks
}

__attribute__((noinline)) void temporary_blocks(int) {
  for (int i = 0; i < plan::kTemporaryCount; ++i) {
    void* block = std::malloc(plan::kTemporaryBytes);  // site: temporary_blocks
    escape(block);
    std::free(block);
  }
}

__attribute__((noinline)) void grow_with_realloc(int t) {
  void* block = nullptr;
  for (int i = 1; i <= plan::kReallocSteps + 1; ++i) {
    block = std::realloc(block, plan::kReallocStepBytes * static_cast<size_t>(i));  // site: grow_with_realloc
    escape(block);
  }
  kept[t].grown = block;
}

__attribute__((noinline)) void grow_with_reallocarray(int t) {
  void* block = nullptr;
  for (int i = 1; i <= plan::kReallocArraySteps; ++i) {
    block =
        reallocarray(block, static_cast<size_t>(i), plan::kReallocArrayMemberBytes);  // site: grow_with_reallocarray
    escape(block);
  }
  kept[t].grown_array = block;
}

__attribute__((noinline)) void zeroed_blocks(int t) {
  for (auto& block : kept[t].calloced)
    block = std::calloc(plan::kCallocMembers, plan::kCallocMemberBytes);  // site: zeroed_blocks
}

__attribute__((noinline)) void posix_memalign_blocks(int t) {
  for (auto& block : kept[t].memaligned) {
    if (posix_memalign(&block, 64, plan::kPosixMemalignBytes) != 0) std::abort();  // site: posix_memalign_blocks
  }
}

__attribute__((noinline)) void aligned_alloc_blocks(int t) {
  for (auto& block : kept[t].aligned)
    block = std::aligned_alloc(256, plan::kAlignedAllocBytes);  // site: aligned_alloc_blocks
}

__attribute__((noinline)) void legacy_aligned_blocks(int t) {
  void** out = kept[t].legacy;
  for (int i = 0; i < plan::kLegacyCount; ++i) {
    *out++ = memalign(128, plan::kMemalignBytes);  // site: legacy_aligned_blocks
    *out++ = valloc(plan::kVallocBytes);           // site: legacy_aligned_blocks
    *out++ = pvalloc(plan::kPvallocBytes);         // site: legacy_aligned_blocks
  }
}

__attribute__((noinline)) void peak_blocks(int) {
  void* blocks[plan::kPeakCount];
  for (auto& block : blocks) block = std::malloc(plan::kPeakBytes);  // site: peak_blocks
  escape(blocks);
  pthread_barrier_wait(&all_at_peak);
  for (void* block : blocks) std::free(block);
}

}  // extern "C"

// C++ names on purpose: the report shows them demangled, with their parameter types.
__attribute__((noinline)) void new_objects(int t) {
  for (int i = 0; i < plan::kNewCount; ++i) {
    kept[t].objects[i] = new Object;                     // site: new_objects(int)
    kept[t].arrays[i] = new int[plan::kIntArrayLength];  // site: new_objects(int)
  }
}

__attribute__((noinline)) void new_delete_pairs(int) {
  for (int i = 0; i < plan::kNewDeleteCount; ++i) {
    auto* object = new Object;  // site: new_delete_pairs(int)
    escape(object);
    delete object;
    auto* chars = new char[plan::kCharArrayLength];  // site: new_delete_pairs(int)
    escape(chars);
    delete[] chars;
  }
}

namespace {

void* thread_main(void* arg) {
  int t = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  pthread_barrier_wait(&start_line);
  keep_blocks(t);
  temporary_blocks(t);
  grow_with_realloc(t);
  grow_with_reallocarray(t);
  zeroed_blocks(t);
  posix_memalign_blocks(t);
  aligned_alloc_blocks(t);
  legacy_aligned_blocks(t);
  new_objects(t);
  new_delete_pairs(t);
  peak_blocks(t);
  return nullptr;
}

}  // namespace

int main() {
  pthread_barrier_init(&start_line, nullptr, plan::kThreads);
  pthread_barrier_init(&all_at_peak, nullptr, plan::kThreads);
  pthread_t threads[plan::kThreads];
  for (int t = 0; t < plan::kThreads; ++t) {
    pthread_create(&threads[t], nullptr, thread_main, reinterpret_cast<void*>(static_cast<intptr_t>(t)));
  }
  for (pthread_t thread : threads) pthread_join(thread, nullptr);
  escape(kept);
  memdx::tracee::say("done");
  return 0;
}
