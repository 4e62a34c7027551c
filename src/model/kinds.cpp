#include "model/kinds.h"

#include <cstddef>

namespace memdx::model {
namespace {

// In the enums' order: row_of indexes by the enum's value (checked below).
constexpr FindingKindRow kFindingKinds[] = {
    {FindingKind::kHeapGrowth, "heap_growth", "live heap", nullptr, nullptr},
    {FindingKind::kAnonGrowth, "anon_growth", "anon memory",
     "see which mappings hold it (malloc heap, direct mmap, stacks) while it runs: memdx inspect {pid}; a long run "
     "makes the trend surer: memdx watch {pid} --duration 300",
     "it has exited; its timeline: memdx report {recording} --html report.html; to see which mappings hold it "
     "(malloc heap, direct mmap, stacks), run it again and memdx inspect its new pid while it runs: {rerun}"},
    {FindingKind::kFileGrowth, "file_growth", "file-backed memory", nullptr, nullptr},
    {FindingKind::kShmemGrowth, "shmem_growth", "shared memory",
     "look for shm_open/memfd segments never unmapped: memdx inspect {pid}; ls -l /dev/shm",
     "look for shm_open/memfd segments never unmapped: ls -l /dev/shm; it has exited, so run it again and memdx "
     "inspect its new pid while it runs: {rerun}"},
    {FindingKind::kFdGrowth, "fd_growth", "the open fd count",
     "list them: ls -l /proc/{pid}/fd (memdx inspect {pid} counts them by type)",
     "it has exited; run it again and list its fds while it runs (ls -l /proc/ITS_PID/fd): {rerun}"},
    {FindingKind::kThreadGrowth, "thread_growth", "the thread count",
     "list them: ps -T -p {pid} (or ls /proc/{pid}/task); look for threads started and never joined",
     "it has exited; run it again and list its threads while it runs (ps -T -p ITS_PID); look for threads started "
     "and never joined: {rerun}"},
    {FindingKind::kGpuGrowth, "gpu_growth", "GPU memory", nullptr, nullptr},
    {FindingKind::kAllocatorRetention, "allocator_retention", nullptr, nullptr, nullptr},
    {FindingKind::kReservationOnly, "reservation_only", nullptr, nullptr, nullptr},
    {FindingKind::kNoGrowth, "no_growth", nullptr, nullptr, nullptr},
};

constexpr HypothesisKindRow kHypothesisKinds[] = {
    {HypothesisKind::kHeapGrowth, "heap_growth", "the malloc heap grows", FindingKind::kHeapGrowth},
    {HypothesisKind::kAnonGrowth, "anon_growth",
     "anonymous memory outside malloc grows (direct mmap, a runtime's own heap)", FindingKind::kAnonGrowth},
    {HypothesisKind::kAllocatorRetention, "allocator_retention",
     "the allocator keeps freed memory: RSS far above the live heap, not a leak", FindingKind::kAllocatorRetention},
    {HypothesisKind::kReservationOnly, "reservation_only", "only address space is reserved: VSZ far above RSS",
     FindingKind::kReservationOnly},
    {HypothesisKind::kFileGrowth, "file_growth", "file-backed pages (page cache) grow: reclaimable, not a leak",
     FindingKind::kFileGrowth},
    {HypothesisKind::kShmemGrowth, "shmem_growth", "shared memory, tmpfs or memfd grows", FindingKind::kShmemGrowth},
    {HypothesisKind::kFdGrowth, "fd_growth", "file descriptors leak", FindingKind::kFdGrowth},
    {HypothesisKind::kThreadGrowth, "thread_growth", "threads leak, and their stacks with them",
     FindingKind::kThreadGrowth},
    {HypothesisKind::kChildGrowth, "child_growth", "a child process, not the root, holds the growth", std::nullopt},
    {HypothesisKind::kGpuGrowth, "gpu_growth", "GPU memory grows", FindingKind::kGpuGrowth},
    {HypothesisKind::kSwapGrowth, "swap_growth", "swap hides the growth: RSS flat while swap rises", std::nullopt},
    {HypothesisKind::kLimitApproach, "limit_approach", "the process approaches its memory limit", std::nullopt},
};

template <typename Row, size_t N>
constexpr bool in_enum_order(const Row (&rows)[N]) {
  for (size_t i = 0; i < N; ++i) {
    if (static_cast<size_t>(rows[i].kind) != i) return false;
  }
  return true;
}
static_assert(in_enum_order(kFindingKinds) &&
                  std::size(kFindingKinds) == static_cast<size_t>(FindingKind::kNoGrowth) + 1,
              "one row per FindingKind, in its order");
static_assert(in_enum_order(kHypothesisKinds) &&
                  std::size(kHypothesisKinds) == static_cast<size_t>(HypothesisKind::kLimitApproach) + 1,
              "one row per HypothesisKind, in its order");

}  // namespace

const FindingKindRow& row_of(FindingKind kind) {
  return kFindingKinds[static_cast<size_t>(kind)];
}

const HypothesisKindRow& row_of(HypothesisKind kind) {
  return kHypothesisKinds[static_cast<size_t>(kind)];
}

}  // namespace memdx::model
