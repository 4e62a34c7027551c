// The tracer under the conditions that break tracers: many threads, fork and exec chains,
// dlopen'ed code, signal handlers, exit from a second thread, abort, SIGKILL, vfork,
// posix_spawn, a child exec'd without LD_PRELOAD, library constructors.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "trace_integration/programs/stress_plan.h"
#include "trace_integration/trace_support.h"

namespace memdx::test {
namespace {

namespace plan = memdx::tracee::stress;
using namespace std::chrono_literals;

// "function file:line allocations" per site, for failure messages.
std::string describe_sites(const json& heap_entry) {
  std::string text;
  for (const json& site : heap_entry["sites"]) {
    text += "  " + site["function"].get<std::string>() + " " + site["file"].get<std::string>() + ":" +
            std::to_string(site["line"].get<int>()) + " " + std::to_string(site["allocations"].get<uint64_t>()) + "\n";
  }
  return text;
}

// One function's sites in one heap entry: `blocks` allocations of `bytes`, all kept, named by
// `file` at its marked lines.
void expect_kept_blocks(const json& heap_entry, std::string_view function, int blocks, size_t bytes,
                        const std::string& file) {
  SCOPED_TRACE(std::string(function));
  SiteSums got = site_sums(heap_entry, function);
  EXPECT_EQ(got.allocations, static_cast<uint64_t>(blocks)) << "sites:\n" << describe_sites(heap_entry);
  EXPECT_EQ(got.allocated_bytes, blocks * bytes);
  EXPECT_EQ(got.final_live_bytes, blocks * bytes);
  EXPECT_EQ(got.final_live_blocks, static_cast<uint64_t>(blocks));
  EXPECT_EQ(got.files, std::set<std::string>{tracee_source(file)});
  EXPECT_EQ(got.lines, marked_lines(tracee_source(file), function));
}

// The single heap entry of `pid` that ended with `ended`, or a failure.
std::optional<json> entry_of(const json& verdict, pid_t pid, const std::string& ended) {
  for (const json& entry : heap_entries_of(verdict, pid)) {
    if (entry["ended"] == ended) return entry;
  }
  ADD_FAILURE() << "no heap entry of pid " << pid << " ended \"" << ended << "\" in " << verdict["heap"].dump(1);
  return std::nullopt;
}

using TraceStressTest = TraceTest;

TEST_F(TraceStressTest, SixteenThreadsAllocatingAtOnceAreCountedExactly) {
  Finished run = trace({tracee_path("stress"), "threads"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  json verdict = report();
  ASSERT_EQ(verdict["heap"].size(), 1u);
  uint64_t bytes_per_thread = 0;
  for (int i = 0; i < plan::kStressPerThread; ++i) bytes_per_thread += plan::stress_size(i);
  SiteSums got = site_sums(verdict["heap"][0], "stress_blocks");
  EXPECT_EQ(got.allocations, uint64_t{plan::kStressThreads} * plan::kStressPerThread);
  EXPECT_EQ(got.allocated_bytes, plan::kStressThreads * bytes_per_thread);
  EXPECT_EQ(got.final_live_bytes, 0u);
  EXPECT_EQ(verdict["heap"][0]["unmatched_frees"], 0);
}

// chain (pid P) forks C; C execs chain_exec, which forks G. Four images, each with its own
// blocks and none of its parent's.
TEST_F(TraceStressTest, ForkThenExecChainGivesEachImageItsOwnEntry) {
  Finished run = trace({tracee_path("chain")});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  auto pids = printed_pids(run.out);
  for (const char* label : {"chain-parent", "chain-child", "chain-exec", "chain-grandchild"}) {
    ASSERT_EQ(pids[label].size(), 1u) << label << " missing in:\n" << run.out;
  }
  PrintedPid parent = pids["chain-parent"][0], child = pids["chain-child"][0];
  PrintedPid exec_image = pids["chain-exec"][0], grandchild = pids["chain-grandchild"][0];
  ASSERT_EQ(exec_image.pid, child.pid);
  json verdict = report();
  EXPECT_EQ(verdict["heap"].size(), 4u) << verdict["heap"].dump(1);

  struct Image {
    PrintedPid printed;
    const char* ended;
    const char* function;
    int blocks;
    const char* source;
  };
  const Image images[] = {
      {parent, "exit", "chain_parent_blocks", plan::kChainParentBlocks, "chain.cpp"},
      {child, "exec", "chain_before_exec_blocks", plan::kChainBeforeExecBlocks, "chain.cpp"},
      {exec_image, "exit", "chain_exec_image_blocks", plan::kChainExecImageBlocks, "chain_exec.cpp"},
      {grandchild, "exit", "chain_grandchild_blocks", plan::kChainGrandchildBlocks, "chain_exec.cpp"},
  };
  for (const Image& image : images) {
    SCOPED_TRACE(image.function);
    std::optional<json> entry = entry_of(verdict, image.printed.pid, image.ended);
    if (!entry) continue;
    EXPECT_EQ((*entry)["ppid"].get<pid_t>(), image.printed.ppid);
    expect_kept_blocks(*entry, image.function, image.blocks, plan::kChainBytes, image.source);
    for (const Image& other : images) {
      if (&other != &image) {
        EXPECT_EQ(site_sums(*entry, other.function).sites, 0u) << other.function;
      }
    }
  }
  EXPECT_EQ(child.ppid, parent.pid);
  EXPECT_EQ(grandchild.ppid, child.pid);
}

TEST_F(TraceStressTest, DlopenedLibrarySiteNamesTheLibrarySource) {
  Finished run = trace({tracee_path("stress"), "dlopen", MEMDX_TRACEE_PLUGIN});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  json verdict = report();
  ASSERT_EQ(verdict["heap"].size(), 1u);
  expect_kept_blocks(verdict["heap"][0], "plugin_blocks", plan::kPluginBlocks, plan::kPluginBytes, "plugin.cpp");
}

TEST_F(TraceStressTest, AllocationsInASignalHandlerAreAtTheHandler) {
  Finished run = trace({tracee_path("stress"), "signal"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  json verdict = report();
  ASSERT_EQ(verdict["heap"].size(), 1u);
  expect_kept_blocks(verdict["heap"][0], "on_usr1", plan::kSignals, plan::kSignalBytes, "stress.cpp");
}

TEST_F(TraceStressTest, ExitFromASecondThreadKeepsEveryAllocation) {
  Finished run = trace({tracee_path("stress"), "exit-thread"});
  EXPECT_EQ(run.exit_code, plan::kExitThreadCode) << run.err;
  json verdict = report();
  ASSERT_EQ(verdict["heap"].size(), 1u);
  EXPECT_EQ(verdict["heap"][0]["ended"], "exit");
  expect_kept_blocks(verdict["heap"][0], "before_the_end", plan::kBeforeEndBlocks, plan::kBeforeEndBytes, "stress.cpp");
}

TEST_F(TraceStressTest, AbortKeepsEveryAllocationAndSaysAbort) {
  Finished run = trace({tracee_path("stress"), "abort"});
  EXPECT_EQ(run.exit_code, 128 + SIGABRT) << run.err;
  json verdict = report();
  ASSERT_EQ(verdict["heap"].size(), 1u);
  EXPECT_EQ(verdict["heap"][0]["ended"], "abort");
  expect_kept_blocks(verdict["heap"][0], "before_the_end", plan::kBeforeEndBlocks, plan::kBeforeEndBytes, "stress.cpp");
}

// The state file the "sigkill" mode shares: {pid, mallocs started}.
struct SlowState {
  int32_t pid = 0;
  int32_t mallocs_started = 0;
};

SlowState read_state(const std::string& file) {
  SlowState state;
  std::ifstream in(file, std::ios::binary);
  in.read(reinterpret_cast<char*>(&state), sizeof(state));
  return in ? state : SlowState{};
}

TEST_F(TraceStressTest, SigkilledTargetLeavesAReadableTrace) {
  std::string state_file = path("state");
  Finished run;
  std::thread traced([&] { run = trace({tracee_path("stress"), "sigkill", state_file}, 30); });
  // Past a few flushes of the thread's buffer (every 100 ms while it allocates).
  constexpr int kMallocsBeforeKill = 1000;
  SlowState state;
  for (auto deadline = std::chrono::steady_clock::now() + 20s; std::chrono::steady_clock::now() < deadline;) {
    state = read_state(state_file);
    if (state.pid > 0 && state.mallocs_started >= kMallocsBeforeKill) break;
    std::this_thread::sleep_for(10ms);
  }
  bool started = state.pid > 0 && state.mallocs_started >= kMallocsBeforeKill;
  if (started) ::kill(state.pid, SIGKILL);
  traced.join();
  ASSERT_TRUE(started) << "the target never got going: " << run.err;
  uint64_t mallocs_started = static_cast<uint64_t>(read_state(state_file).mallocs_started);
  ASSERT_LT(mallocs_started, uint64_t{plan::kSlowMaxBlocks}) << "the target finished before the kill";
  EXPECT_EQ(run.exit_code, 128 + SIGKILL) << run.err;

  json verdict = report();
  std::vector<json> entries = heap_entries_of(verdict, state.pid);
  ASSERT_EQ(entries.size(), 1u) << verdict["heap"].dump(1);
  const json& heap = entries[0];
  std::string ended = heap["ended"].get<std::string>();
  EXPECT_TRUE(ended == "killed" || ended == "cut short") << ended;
  SiteSums got = site_sums(heap, "allocate_slowly");
  EXPECT_GT(got.allocations, 0u);
  EXPECT_LE(got.allocations, mallocs_started);
  EXPECT_EQ(got.allocated_bytes, got.allocations * plan::kSlowBytes);
  EXPECT_GT(heap["allocations"].get<uint64_t>(), 0u);
}

// memdx_tracee_spawn starts memdx_tracee_leaf by vfork + exec, posix_spawn, or fork + execve
// with an environment that lacks LD_PRELOAD: the leaf is traced all the same.
class TraceSpawnTest : public TraceTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(TraceSpawnTest, LeafIsTracedWithItsOwnCounts) {
  Finished run = trace({tracee_path("spawn"), GetParam()});
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  auto pids = printed_pids(run.out);
  ASSERT_EQ(pids["spawner"].size(), 1u) << run.out;
  ASSERT_EQ(pids["leaf"].size(), 1u) << run.out;
  PrintedPid spawner = pids["spawner"][0], leaf = pids["leaf"][0];
  EXPECT_EQ(leaf.ppid, spawner.pid);
  json verdict = report();
  std::optional<json> entry = entry_of(verdict, leaf.pid, "exit");
  ASSERT_TRUE(entry);
  EXPECT_EQ((*entry)["ppid"].get<pid_t>(), spawner.pid);
  expect_kept_blocks(*entry, "leaf_blocks", plan::kLeafBlocks, plan::kLeafBytes, "leaf.cpp");
  ASSERT_TRUE(entry_of(verdict, spawner.pid, "exit"));
}

INSTANTIATE_TEST_SUITE_P(Ways, TraceSpawnTest, ::testing::Values("vfork", "spawn", "clean-env"), [](const auto& way) {
  std::string name = way.param;
  return name == "clean-env" ? std::string("clean_env") : name;
});

// A library's constructor runs before main, and before or after the tracer's own constructor
// as the loader orders them: its allocations count all the same.
TEST_F(TraceStressTest, LibraryConstructorAllocationsAreTraced) {
  Finished run = trace({tracee_path("ctor")});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  json verdict = report();
  ASSERT_EQ(verdict["heap"].size(), 1u);
  expect_kept_blocks(verdict["heap"][0], "ctor_main_blocks", plan::kCtorMainBlocks, plan::kCtorMainBytes,
                     "ctor_main.cpp");
  expect_kept_blocks(verdict["heap"][0], "ctor_lib_blocks", plan::kCtorLibBlocks, plan::kCtorLibBytes, "ctor_lib.cpp");
}

// The program's own functions are sites whatever their names begin with.
TEST_F(TraceStressTest, FunctionsNamedLikeTheAllocatorAreStillSites) {
  Finished run = trace({tracee_path("stress"), "allocator-names"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  json verdict = report();
  ASSERT_EQ(verdict["heap"].size(), 1u);
  for (const char* function : {"malloc_pool_blocks", "calloc_table_blocks", "reallocate_buffers"}) {
    expect_kept_blocks(verdict["heap"][0], function, plan::kNamedBlocks, plan::kNamedBytes, "stress.cpp");
  }
}

}  // namespace
}  // namespace memdx::test
