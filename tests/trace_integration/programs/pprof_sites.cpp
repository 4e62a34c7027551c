// memdx_tracee_pprof_sites: allocations known by function, for `memdx report --pprof/--folded`.
// Always keeps, churns and fills a vector; "fork" adds a child process that keeps blocks of its own, "grow" a
// function whose live bytes rise steadily for a second.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "pprof_plan.h"
#include "tracee_common.h"

namespace plan = memdx::tracee::pprof;

namespace {
void* kept[plan::kKeptBlocks];
void* churned[plan::kChurnBlocks];
void* child_kept[plan::kChildBlocks];
void* grown[plan::kGrowSteps * plan::kGrowBlocksPerStep];
}  // namespace

// Inlined on purpose: the reports must show an inlined function as a frame of its own.
static inline __attribute__((always_inline)) void keep_one(int i) {
  kept[i] = std::malloc(plan::kKeptBytes);  // site: keep_one
}

extern "C" __attribute__((noinline)) void keep_blocks() {
  for (int i = 0; i < plan::kKeptBlocks; ++i) keep_one(i);
}

extern "C" __attribute__((noinline)) void churn_pages() {
  for (auto& block : churned) block = std::malloc(plan::kChurnBytes);  // site: churn_pages
  memdx::tracee::escape(churned);
  for (void* block : churned) std::free(block);
}

// The allocation happens inside std::vector's templates, below this function.
extern "C" __attribute__((noinline)) void fill_vector() {
  static auto* values = new std::vector<uint64_t>;
  for (int i = 0; i < plan::kVectorItems; ++i) values->push_back(static_cast<uint64_t>(i));
  memdx::tracee::escape(values);
}

extern "C" __attribute__((noinline)) void child_blocks() {
  for (auto& block : child_kept) block = std::malloc(plan::kChildBytes);  // site: child_blocks
}

extern "C" __attribute__((noinline)) void grow_steadily() {
  for (int step = 0; step < plan::kGrowSteps; ++step) {
    for (int i = 0; i < plan::kGrowBlocksPerStep; ++i) {
      grown[step * plan::kGrowBlocksPerStep + i] = std::malloc(plan::kGrowBytes);  // site: grow_steadily
    }
    ::usleep(plan::kGrowStepMs * 1000);
  }
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "";
  keep_blocks();
  memdx::tracee::escape(kept);
  churn_pages();
  fill_vector();
  if (std::strcmp(mode, "grow") == 0) {
    grow_steadily();
    memdx::tracee::escape(grown);
  }
  if (std::strcmp(mode, "fork") == 0) {
    pid_t child = ::fork();
    if (child < 0) return 2;
    if (child == 0) {
      child_blocks();
      memdx::tracee::escape(child_kept);
      ::_exit(0);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 3;
  }
  memdx::tracee::say("done");
  return 0;
}
