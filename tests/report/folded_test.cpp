// report::render_folded on synthetic heap traces: modules that cannot be opened, so every frame
// is "module+0xoffset" (an address in no module: "?+0xaddress") and the expected lines are known
// exactly.
#include <gtest/gtest.h>

#include "report/folded.h"

namespace memdx::report {
namespace {

using analyze::AllocationStats;
using analyze::HeapTrace;
using analyze::ProcessHeapProfile;

// The program at [0x10000, 0x20000) and a C library at [0x30000, 0x40000), both without files:
// return address A resolves to "name+0x(A - 1 - start)".
ProcessHeapProfile process(pid_t pid) {
  ProcessHeapProfile profile;
  profile.pid = pid;
  profile.modules.push_back({0, 0x10000, 0x10000, 0x20000, "/nonexistent/app"});
  profile.modules.push_back({0, 0x30000, 0x30000, 0x40000, "/nonexistent/libc.so.6"});
  return profile;
}

AllocationStats stats(uint64_t allocated_bytes, uint64_t live_bytes, uint64_t live_at_peak_bytes) {
  AllocationStats s;
  s.allocations = 1;
  s.allocated_bytes = allocated_bytes;
  s.live_bytes = live_bytes;
  s.live_at_peak_bytes = live_at_peak_bytes;
  return s;
}

TEST(FoldedMetric, NamesAreTheOptionsChoices) {
  EXPECT_EQ(folded_metric_named("peak"), FoldedMetric::kPeak);
  EXPECT_EQ(folded_metric_named("growth"), FoldedMetric::kGrowth);
  EXPECT_EQ(folded_metric_named("leaked"), FoldedMetric::kLeaked);
  EXPECT_EQ(folded_metric_named("allocated"), FoldedMetric::kAllocated);
  EXPECT_EQ(folded_metric_named("Peak"), std::nullopt);
  EXPECT_EQ(folded_metric_named(""), std::nullopt);
}

TEST(Folded, OneImageLinesAreOutermostFirstWithoutZeroValues) {
  HeapTrace trace;
  trace.processes.push_back(process(42));
  ProcessHeapProfile& p = trace.processes.back();
  p.stacks[1] = {0x10101, 0x10201};  // innermost first
  p.stacks[2] = {0x10301, 0x10201};
  p.heap_by_stack[1] = stats(300, 100, 150);
  p.heap_by_stack[2] = stats(50, 0, 0);
  EXPECT_EQ(render_folded(trace, FoldedMetric::kLeaked), "app+0x200;app+0x100 100\n");
  EXPECT_EQ(render_folded(trace, FoldedMetric::kPeak), "app+0x200;app+0x100 150\n");
  EXPECT_EQ(render_folded(trace, FoldedMetric::kAllocated), "app+0x200;app+0x100 300\napp+0x200;app+0x300 50\n");
}

TEST(Folded, RuntimeFramesAreDroppedAtTheLeafOnly) {
  HeapTrace trace;
  trace.processes.push_back(process(42));
  ProcessHeapProfile& p = trace.processes.back();
  p.stacks[1] = {0x30101, 0x10101, 0x30201};  // libc, app, libc (the outermost, like _start)
  p.stacks[2] = {0x30301, 0x30401};           // the runtime's alone: kept whole
  p.heap_by_stack[1] = stats(10, 10, 10);
  p.heap_by_stack[2] = stats(20, 20, 20);
  EXPECT_EQ(render_folded(trace, FoldedMetric::kLeaked),
            "libc.so.6+0x200;app+0x100 10\n"
            "libc.so.6+0x400;libc.so.6+0x300 20\n");
}

TEST(Folded, StacksThatFoldAlikeAreMerged) {
  HeapTrace trace;
  trace.processes.push_back(process(42));
  ProcessHeapProfile& p = trace.processes.back();
  p.stacks[1] = {0x30101, 0x10101};
  p.stacks[2] = {0x30201, 0x10101};  // another allocator frame under the same caller
  p.heap_by_stack[1] = stats(10, 10, 10);
  p.heap_by_stack[2] = stats(5, 5, 5);
  EXPECT_EQ(render_folded(trace, FoldedMetric::kAllocated), "app+0x100 15\n");
}

TEST(Folded, SeveralImagesStartWithTheirProcess) {
  HeapTrace trace;
  trace.processes.push_back(process(42));
  trace.processes.back().stacks[1] = {0x10101};
  trace.processes.back().heap_by_stack[1] = stats(10, 10, 10);
  trace.processes.push_back(process(43));
  trace.processes.back().stacks[1] = {0x10101};
  trace.processes.back().heap_by_stack[1] = stats(7, 7, 7);
  trace.processes.back().heap_by_stack[9] = stats(3, 3, 3);  // a stack the table had no room for
  ProcessHeapProfile unnamed;
  unnamed.pid = 44;
  unnamed.stacks[1] = {0x10101};
  unnamed.heap_by_stack[1] = stats(1, 1, 1);
  trace.processes.push_back(unnamed);
  EXPECT_EQ(render_folded(trace, FoldedMetric::kAllocated),
            "pid 42 (app);app+0x100 10\n"
            "pid 43 (app);(no stack) 3\n"
            "pid 43 (app);app+0x100 7\n"
            "pid 44;?+0x10101 1\n");
}

TEST(Folded, AnEmptyTraceIsEmpty) {
  EXPECT_EQ(render_folded(HeapTrace{}, FoldedMetric::kPeak), "");
}

// A library unloaded and another loaded at its addresses: each stack is named in the library
// mapped when it was recorded (its stack_seq), though the return addresses are the same.
TEST(Folded, EachStackIsResolvedInTheLibraryMappedWhenItWasRecorded) {
  HeapTrace trace;
  trace.processes.push_back(process(42));
  ProcessHeapProfile& p = trace.processes.back();
  analyze::TraceModule first{100, 0x50000, 0x50000, 0x60000, "/nonexistent/liba.so"};
  first.unload_seq = 200;
  p.modules.push_back(first);
  p.modules.push_back({300, 0x50000, 0x50000, 0x60000, "/nonexistent/libb.so"});
  p.stacks[1] = {0x50101, 0x10101};
  p.stacks[2] = {0x50101, 0x10101};
  p.stack_seqs[1] = 150;
  p.stack_seqs[2] = 350;
  p.heap_by_stack[1] = stats(7, 7, 7);
  p.heap_by_stack[2] = stats(9, 9, 9);
  EXPECT_EQ(render_folded(trace, FoldedMetric::kAllocated),
            "app+0x100;liba.so+0x100 7\n"
            "app+0x100;libb.so+0x100 9\n");
}

}  // namespace
}  // namespace memdx::report
