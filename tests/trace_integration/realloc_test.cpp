// memdx trace on memdx_tracee_realloc_fail: a realloc that fails leaves its block allocated, so
// the trace must not record it freed (a failed realloc once read as a free: a leak vanished and
// the block's later free was "unmatched").
#include <gtest/gtest.h>

#include "trace_integration/trace_support.h"

namespace memdx::test {
namespace {

using ReallocTest = TraceTest;

TEST_F(ReallocTest, FailedReallocKeepsItsBlock) {
  Finished run = trace({tracee_path("realloc_fail")});
  ASSERT_EQ(run.exit_code, 0) << "realloc of PTRDIFF_MAX bytes did not fail natively? " << run.out << run.err;
  EXPECT_EQ(run.out, "failed twice\n");
  json verdict = report();
  ASSERT_EQ(verdict["heap"].size(), 1u);
  const json& heap = verdict["heap"][0];
  EXPECT_EQ(heap["unmatched_frees"], 0);

  SiteSums kept = site_sums(heap, "keep_after_failed_realloc");
  EXPECT_EQ(kept.allocations, 1u);
  EXPECT_EQ(kept.final_live_bytes, 10u);
  EXPECT_EQ(kept.final_live_blocks, 1u);
  EXPECT_EQ(kept.lines, marked_lines(tracee_source("realloc_fail.cpp"), "keep_after_failed_realloc"));

  SiteSums freed = site_sums(heap, "free_after_failed_realloc");
  EXPECT_EQ(freed.allocations, 1u);
  EXPECT_EQ(freed.allocated_bytes, 20u);
  EXPECT_EQ(freed.final_live_bytes, 0u);
}

}  // namespace
}  // namespace memdx::test
