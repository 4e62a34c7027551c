// What memdx_tracee_pprof_sites allocates, shared by the program and the tests of
// `memdx report --pprof` and `--folded`.
#pragma once

#include <cstddef>

namespace memdx::tracee::pprof {

// keep_one (inlined into keep_blocks): malloc, kept until exit.
constexpr int kKeptBlocks = 1000;
constexpr size_t kKeptBytes = 100;
// churn_pages: malloc, all held at once, then all freed.
constexpr int kChurnBlocks = 500;
constexpr size_t kChurnBytes = 4096;
// fill_vector: push_back into a std::vector, kept: libstdc++'s templates allocate.
constexpr int kVectorItems = 1000;
// With "fork": the child's child_blocks, kept until the child exits.
constexpr int kChildBlocks = 200;
constexpr size_t kChildBytes = 300;
// With "grow": grow_steadily keeps kGrowBlocksPerStep blocks every kGrowStepMs, kGrowSteps times.
constexpr int kGrowSteps = 20;
constexpr int kGrowStepMs = 50;
constexpr int kGrowBlocksPerStep = 10;
constexpr size_t kGrowBytes = 5000;

}  // namespace memdx::tracee::pprof
