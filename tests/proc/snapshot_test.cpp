// analyze::take_process_snapshot and friends over the fixture tree procroot/ + sysroot/:
//   100  a 6.x process with every kind of mapping, fds, threads and a cgroup v2 memory controller
//   200  a kernel older than 4.14: no smaps_rollup, no VmFlags, no RssAnon; no fd directory
//   300  a kernel thread (old kernel, no "Kthread:" line); 400 a zombie; 1000 a bare shell
#include "analyze/snapshot.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <ostream>

#include "fixture.h"

namespace memdx::model {
// Failure messages name the category ("anon_mmap") instead of dumping its bytes.
inline void PrintTo(RegionCategory category, std::ostream* os) {
  *os << category_name(category);
}
}  // namespace memdx::model

namespace memdx::analyze {
namespace {

using memdx::testing::fixture_path;
using memdx::testing::kGiB;
using memdx::testing::kKiB;
using memdx::testing::kMiB;
using model::RegionCategory;
using Strings = std::vector<std::string>;

proc::ProcFs fixture_fs() {
  return proc::ProcFs(fixture_path("procroot"), fixture_path("sysroot"));
}

model::ProcessSnapshot snapshot_of(pid_t pid, SnapshotOptions options = {}) {
  auto result = take_process_snapshot(fixture_fs(), pid, options);
  EXPECT_TRUE(result.ok()) << (result.ok() ? "" : result.error().message);
  return result.ok() ? std::move(result).value() : model::ProcessSnapshot{};
}

const model::RegionTotals* totals_of(const model::ProcessSnapshot& p, RegionCategory category) {
  auto it = std::find_if(p.regions.begin(), p.regions.end(),
                         [&](const model::RegionTotals& t) { return t.category == category; });
  return it == p.regions.end() ? nullptr : &*it;
}

// ---- pid 100 -----------------------------------------------------------------------------------

TEST(AnalyzeProcSnapshot, ModernProcessIdentity) {
  model::ProcessSnapshot p = snapshot_of(100);
  EXPECT_EQ(p.pid, 100);
  EXPECT_EQ(p.ppid, 1);
  EXPECT_EQ(p.comm, "app server");
  EXPECT_EQ(p.command, (Strings{"/usr/bin/app", "--port", "8080"}));
  EXPECT_EQ(p.command_line(), "/usr/bin/app --port 8080");
  EXPECT_EQ(p.state, 'S');
  EXPECT_EQ(p.uid, 1000u);
  EXPECT_EQ(p.threads, 4u);
  EXPECT_FALSE(p.is_kernel_thread);
  EXPECT_FALSE(p.is_zombie);
  EXPECT_TRUE(p.unreadable.empty());
}

TEST(AnalyzeProcSnapshot, ModernProcessMemoryComesFromTheRollup) {
  model::ProcessSnapshot p = snapshot_of(100);
  const model::MemoryTotals& m = p.memory;
  EXPECT_EQ(m.rss_bytes, 13768 * kKiB);       // rollup, not status VmRSS (13760 kB)
  EXPECT_EQ(m.rss_anon_bytes, 10412 * kKiB);  // rollup Anonymous
  EXPECT_EQ(m.rss_shmem_bytes, 1792 * kKiB);  // status RssShmem
  EXPECT_EQ(m.rss_file_bytes, 1564 * kKiB);   // the remainder
  EXPECT_EQ(m.rss_anon_bytes + m.rss_file_bytes + m.rss_shmem_bytes, m.rss_bytes);
  EXPECT_EQ(m.pss_bytes, 11818 * kKiB);
  EXPECT_EQ(m.uss_bytes, (68 + 10924) * kKiB);
  EXPECT_EQ(m.swap_bytes, 1024 * kKiB);  // rollup Swap, not status VmSwap (1020 kB)
  EXPECT_EQ(m.swap_pss_bytes, 1024 * kKiB);
  EXPECT_EQ(m.vsz_bytes, 134309216 * kKiB);  // status VmSize: over 128 GiB
  EXPECT_EQ(m.peak_rss_bytes, 20480 * kKiB);
  EXPECT_EQ(m.locked_bytes, 16 * kKiB);
}

TEST(AnalyzeProcSnapshot, ModernProcessRegionTotals) {
  model::ProcessSnapshot p = snapshot_of(100);
  ASSERT_TRUE(p.regions_measured);
  std::vector<RegionCategory> order;
  for (const auto& t : p.regions) order.push_back(t.category);
  EXPECT_EQ(order,
            (std::vector<RegionCategory>{RegionCategory::kHeap, RegionCategory::kAnonMmap, RegionCategory::kStack,
                                         RegionCategory::kFile, RegionCategory::kShmem, RegionCategory::kMemfd,
                                         RegionCategory::kTmpfs, RegionCategory::kReserved, RegionCategory::kSpecial}));

  const auto* heap = totals_of(p, RegionCategory::kHeap);
  ASSERT_NE(heap, nullptr);
  EXPECT_EQ(heap->count, 1u);
  EXPECT_EQ(heap->vsz_bytes, 4 * kMiB);
  EXPECT_EQ(heap->rss_bytes, 2 * kMiB);

  const auto* anon = totals_of(p, RegionCategory::kAnonMmap);
  ASSERT_NE(anon, nullptr);
  EXPECT_EQ(anon->count, 2u);  // the arena's rw part and [anon:v8 heap]
  EXPECT_EQ(anon->vsz_bytes, (10240 + 4) * kKiB);
  EXPECT_EQ(anon->rss_bytes, (8192 + 4) * kKiB);
  EXPECT_EQ(anon->swap_bytes, 1024 * kKiB);

  const auto* stack = totals_of(p, RegionCategory::kStack);
  ASSERT_NE(stack, nullptr);
  EXPECT_EQ(stack->count, 3u);  // [stack], the guarded pthread stack, the stack found by its sp
  EXPECT_EQ(stack->vsz_bytes, (8192 + 8192 + 132) * kKiB);
  EXPECT_EQ(stack->rss_bytes, (64 + 32 + 40) * kKiB);

  const auto* file = totals_of(p, RegionCategory::kFile);
  ASSERT_NE(file, nullptr);
  EXPECT_EQ(file->count, 8u);
  EXPECT_EQ(file->vsz_bytes, 2236 * kKiB);
  EXPECT_EQ(file->rss_bytes, 1588 * kKiB);
  EXPECT_EQ(file->pss_bytes, 286 * kKiB);

  const auto* tmpfs = totals_of(p, RegionCategory::kTmpfs);  // via 100/mountinfo's 0:26
  ASSERT_NE(tmpfs, nullptr);
  EXPECT_EQ(tmpfs->count, 1u);
  EXPECT_EQ(tmpfs->rss_bytes, 1024 * kKiB);
  EXPECT_EQ(tmpfs->pss_bytes, 512 * kKiB);

  const auto* reserved = totals_of(p, RegionCategory::kReserved);
  ASSERT_NE(reserved, nullptr);
  EXPECT_EQ(reserved->count, 3u);
  EXPECT_EQ(reserved->vsz_bytes, 128 * kGiB + 54 * kMiB + 4 * kKiB);
  EXPECT_EQ(reserved->rss_bytes, 0u);

  const auto* special = totals_of(p, RegionCategory::kSpecial);
  ASSERT_NE(special, nullptr);
  EXPECT_EQ(special->count, 3u);
  EXPECT_EQ(special->vsz_bytes, 28 * kKiB);

  EXPECT_EQ(totals_of(p, RegionCategory::kGpu), nullptr);

  uint64_t vsz = 0;
  uint64_t rss = 0;
  for (const auto& t : p.regions) {
    vsz += t.vsz_bytes;
    rss += t.rss_bytes;
  }
  EXPECT_EQ(vsz, 134309220 * kKiB);  // every mapping lands in exactly one category
  EXPECT_EQ(rss, p.memory.rss_bytes);
}

TEST(AnalyzeProcSnapshot, ModernProcessTopRegions) {
  model::ProcessSnapshot p = snapshot_of(100);
  ASSERT_EQ(p.top_regions.size(), 10u);
  const auto& top = p.top_regions;
  EXPECT_EQ(top[0].label, "[anon]");
  EXPECT_EQ(top[0].start, 0x7f3a00000000u);
  EXPECT_EQ(top[0].category, RegionCategory::kAnonMmap);
  EXPECT_EQ(top[0].rss_bytes, 8 * kMiB);
  EXPECT_EQ(top[0].swap_bytes, 1 * kMiB);
  EXPECT_EQ(top[1].label, "[heap]");
  EXPECT_EQ(top[2].label, "/usr/lib/x86_64-linux-gnu/libc.so.6");
  EXPECT_EQ(top[2].perms, "r-xp");
  EXPECT_EQ(top[3].label, "/dev/shm/ring buffer");
  EXPECT_EQ(top[3].category, RegionCategory::kTmpfs);
  EXPECT_EQ(top[4].label, "/memfd:pool (deleted)");
  EXPECT_EQ(top[4].category, RegionCategory::kMemfd);
  EXPECT_EQ(top[5].label, "/dev/zero (deleted)");
  EXPECT_EQ(top[5].category, RegionCategory::kShmem);
  EXPECT_EQ(top[5].perms, "rw-s");
  EXPECT_EQ(top[8].label, "[thread stack]");
  EXPECT_EQ(top[8].category, RegionCategory::kStack);
  EXPECT_EQ(top[8].rss_bytes, 64 * kKiB);
  EXPECT_EQ(top[9].label, "/usr/bin/app");
  EXPECT_EQ(top[9].rss_bytes, 60 * kKiB);

  SnapshotOptions three;
  three.top_regions = 3;
  EXPECT_EQ(snapshot_of(100, three).top_regions.size(), 3u);
}

TEST(AnalyzeProcSnapshot, ModernProcessModules) {
  model::ProcessSnapshot p = snapshot_of(100);
  ASSERT_EQ(p.modules.size(), 2u);
  const auto& libc = p.modules[0];  // largest RSS first
  EXPECT_EQ(libc.path, "/usr/lib/x86_64-linux-gnu/libc.so.6");
  EXPECT_EQ(libc.code_vsz_bytes, 1620 * kKiB);
  EXPECT_EQ(libc.code_rss_bytes, 1200 * kKiB);
  EXPECT_EQ(libc.data_vsz_bytes, (160 + 352 + 16 + 8) * kKiB);
  EXPECT_EQ(libc.data_rss_bytes, (160 + 128 + 16 + 8) * kKiB);
  EXPECT_EQ(libc.pss_bytes, (20 + 150 + 16 + 16 + 8) * kKiB);
  const auto& app = p.modules[1];
  EXPECT_EQ(app.path, "/usr/bin/app");
  EXPECT_EQ(app.code_rss_bytes, 60 * kKiB);
  EXPECT_EQ(app.data_rss_bytes, 16 * kKiB);
}

TEST(AnalyzeProcSnapshot, ModernProcessFds) {
  model::ProcessSnapshot p = snapshot_of(100);
  ASSERT_TRUE(p.fds);
  EXPECT_EQ(p.fds->total, 9u);
  EXPECT_EQ(p.fds->by_type, (std::map<std::string, uint32_t>{{"anon_inode", 1},
                                                             {"device", 1},
                                                             {"eventfd", 1},
                                                             {"memfd", 1},
                                                             {"pipe", 2},
                                                             {"pty", 1},
                                                             {"regular", 1},
                                                             {"socket", 1}}));
}

TEST(AnalyzeProcSnapshot, WithoutRegionsTheTotalsStayAndRegionsAreEmpty) {
  SnapshotOptions options;
  options.read_regions = false;
  model::ProcessSnapshot p = snapshot_of(100, options);
  EXPECT_FALSE(p.regions_measured);
  EXPECT_TRUE(p.regions.empty());
  EXPECT_TRUE(p.top_regions.empty());
  EXPECT_TRUE(p.modules.empty());
  EXPECT_EQ(p.memory.pss_bytes, 11818 * kKiB);
}

// ---- pid 200: kernel without smaps_rollup ------------------------------------------------------

TEST(AnalyzeProcSnapshot, OldKernelTotalsComeFromSummingSmaps) {
  model::ProcessSnapshot p = snapshot_of(200);
  EXPECT_EQ(p.comm, "olddaemon");
  EXPECT_EQ(p.ppid, 100);
  EXPECT_EQ(p.threads, 2u);
  EXPECT_EQ(p.command, (Strings{"/usr/sbin/olddaemon", "-f"}));
  const model::MemoryTotals& m = p.memory;
  EXPECT_EQ(m.rss_bytes, 1700 * kKiB);
  EXPECT_EQ(m.pss_bytes, 928 * kKiB);
  EXPECT_EQ(m.uss_bytes, (200 + 472) * kKiB);
  EXPECT_EQ(m.rss_anon_bytes, 472 * kKiB);
  EXPECT_EQ(m.rss_shmem_bytes, 0u);
  EXPECT_EQ(m.rss_file_bytes, 1228 * kKiB);
  EXPECT_EQ(m.swap_bytes, 100 * kKiB);
  EXPECT_EQ(m.vsz_bytes, 78344 * kKiB);
  EXPECT_EQ(m.peak_rss_bytes, 1800 * kKiB);
  // smaps_rollup is simply absent on such kernels: not an access problem.
  EXPECT_EQ(std::count(p.unreadable.begin(), p.unreadable.end(), "smaps_rollup"), 0);
}

TEST(AnalyzeProcSnapshot, OldKernelWithoutSwapPssDoesNotClaimZero) {
  model::ProcessSnapshot p = snapshot_of(200);
  EXPECT_NE(p.memory.swap_pss_bytes, std::optional<uint64_t>(0));
}

TEST(AnalyzeProcSnapshot, OldKernelRegions) {
  model::ProcessSnapshot p = snapshot_of(200);
  ASSERT_TRUE(p.regions_measured);
  const auto* stack = totals_of(p, RegionCategory::kStack);
  ASSERT_NE(stack, nullptr);
  EXPECT_EQ(stack->count, 2u);  // [stack] and [stack:201]
  EXPECT_EQ(stack->rss_bytes, (16 + 24) * kKiB);
  const auto* reserved = totals_of(p, RegionCategory::kReserved);
  ASSERT_NE(reserved, nullptr);
  EXPECT_EQ(reserved->count, 3u);  // arena remainder, a guard page and libc's ---p gap
  const auto* file = totals_of(p, RegionCategory::kFile);
  ASSERT_NE(file, nullptr);
  EXPECT_EQ(file->count, 6u);
  EXPECT_EQ(file->rss_bytes, (200 + 4 + 8 + 1024 + 16 + 8) * kKiB);
  ASSERT_EQ(p.modules.size(), 2u);
  EXPECT_EQ(p.modules[0].path, "/lib/x86_64-linux-gnu/libc-2.19.so");
  EXPECT_EQ(p.modules[0].code_rss_bytes, 1024 * kKiB);
}

TEST(AnalyzeProcSnapshot, OldKernelTotalsWithoutRegions) {
  // Without smaps_rollup the full smaps is read even when regions are not wanted.
  SnapshotOptions options;
  options.read_regions = false;
  model::ProcessSnapshot p = snapshot_of(200, options);
  EXPECT_FALSE(p.regions_measured);
  EXPECT_TRUE(p.regions.empty());
  EXPECT_EQ(p.memory.pss_bytes, 928 * kKiB);
  EXPECT_EQ(p.memory.rss_bytes, 1700 * kKiB);
}

TEST(AnalyzeProcSnapshot, MissingFdDirectoryIsRecordedAsUnreadable) {
  // count_fds reports kNotFound for a live process; the snapshot lists "fd" and carries on.
  model::ProcessSnapshot p = snapshot_of(200);
  EXPECT_FALSE(p.fds.has_value());
  EXPECT_EQ(p.unreadable, Strings{"fd"});
}

// ---- pid 300, 400, 999 -------------------------------------------------------------------------

TEST(AnalyzeProcSnapshot, KernelThreadHasNoUserMemory) {
  model::ProcessSnapshot p = snapshot_of(300);
  EXPECT_TRUE(p.is_kernel_thread);
  EXPECT_FALSE(p.is_zombie);
  EXPECT_EQ(p.comm, "kworker/0:1H");
  EXPECT_EQ(p.state, 'I');
  EXPECT_EQ(p.ppid, 2);
  EXPECT_TRUE(p.command.empty());
  EXPECT_EQ(p.command_line(), "[kworker/0:1H]");
  EXPECT_EQ(p.memory.rss_bytes, 0u);
  EXPECT_EQ(p.memory.vsz_bytes, 0u);
  EXPECT_FALSE(p.memory.pss_bytes.has_value());
  EXPECT_FALSE(p.regions_measured);
  // The fixture has no fd directory (git keeps no empty ones): recorded like pid 200's.
  EXPECT_EQ(p.unreadable, Strings{"fd"});
}

TEST(AnalyzeProcSnapshot, ZombieIsReadWithoutMemoryOrFds) {
  model::ProcessSnapshot p = snapshot_of(400);
  EXPECT_TRUE(p.is_zombie);
  EXPECT_FALSE(p.is_kernel_thread);
  EXPECT_EQ(p.state, 'Z');
  EXPECT_EQ(p.comm, "defunct child");
  EXPECT_TRUE(p.command.empty());
  EXPECT_EQ(p.memory.rss_bytes, 0u);
  EXPECT_FALSE(p.memory.pss_bytes.has_value());
  EXPECT_FALSE(p.regions_measured);
  EXPECT_FALSE(p.fds.has_value());
  EXPECT_TRUE(p.unreadable.empty());  // fds of a zombie are not even tried
}

TEST(AnalyzeProcSnapshot, MissingProcessIsGone) {
  auto result = take_process_snapshot(fixture_fs(), 999, {});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, proc::ReadErrorKind::kProcessGone);
}

// ---- process table and system ------------------------------------------------------------------

TEST(AnalyzeProcessTable, ParentsAndChildrenFromStat) {
  ProcessTable table = scan_process_table(fixture_fs());
  EXPECT_EQ(table.parent_of, (std::map<pid_t, pid_t>{{100, 1}, {200, 100}, {300, 2}, {400, 100}, {1000, 1}}));
  EXPECT_EQ(table.children(100), (std::vector<pid_t>{200, 400}));
  EXPECT_EQ(table.children(1), (std::vector<pid_t>{100, 1000}));
  EXPECT_TRUE(table.children(200).empty());
  EXPECT_EQ(table.subtree(100), (std::vector<pid_t>{100, 200, 400}));
  EXPECT_EQ(table.subtree(1), (std::vector<pid_t>{1, 100, 200, 400, 1000}));
  EXPECT_EQ(table.subtree(12345), (std::vector<pid_t>{12345}));
}

TEST(AnalyzeSystemSnapshot, MeminfoPsiAndCgroup) {
  model::SystemSnapshot s = take_system_snapshot(fixture_fs(), 100);
  EXPECT_EQ(s.mem_total_bytes, 24683620 * kKiB);
  EXPECT_EQ(s.mem_available_bytes, 24457316 * kKiB);
  EXPECT_EQ(s.swap_total_bytes, 0u);
  ASSERT_TRUE(s.psi);
  EXPECT_EQ(s.psi->some_avg10, 0.12);
  EXPECT_EQ(s.psi->some_avg60, 0.05);
  EXPECT_EQ(s.psi->full_avg10, 0.0);
  ASSERT_TRUE(s.cgroup);
  EXPECT_EQ(s.cgroup->version, 2);
  EXPECT_EQ(s.cgroup->path, "/user.slice/app.service");
  EXPECT_EQ(s.cgroup->memory_current_bytes, 500 * kMiB);
  EXPECT_EQ(s.cgroup->memory_max_bytes, 1 * kGiB);
  EXPECT_FALSE(s.cgroup->memory_high_bytes.has_value());
  EXPECT_EQ(s.cgroup->oom_events, 2u);
  EXPECT_EQ(s.cgroup->oom_kill_events, 1u);
  EXPECT_EQ(s.cgroup->anon_bytes, 300 * kMiB);
  EXPECT_EQ(s.cgroup->file_bytes, 100 * kMiB);
  ASSERT_TRUE(s.cgroup->psi);
  EXPECT_EQ(s.cgroup->psi->some_avg10, 1.50);
  EXPECT_EQ(s.cgroup->psi->full_avg60, 0.25);
}

TEST(AnalyzeSystemSnapshot, NoCgroupForAProcessOutsideOne) {
  model::SystemSnapshot s = take_system_snapshot(fixture_fs(), 1000);
  EXPECT_FALSE(s.cgroup.has_value());
  EXPECT_EQ(s.mem_total_bytes, 24683620 * kKiB);
}

}  // namespace
}  // namespace memdx::analyze
