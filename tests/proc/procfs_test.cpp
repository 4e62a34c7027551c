// ProcFs against fixture trees: procroot/ + sysroot/ (a cgroup v2 host) and procroot_v1/ +
// sysroot_v1/ (this machine's hybrid layout, memory controller in cgroup v1).
#include "proc/procfs.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <string>

#include "fixture.h"

namespace memdx::proc {
namespace {

using memdx::testing::fixture_path;
using memdx::testing::kKiB;
using memdx::testing::kMiB;

ProcFs v2_fs() {
  return ProcFs(fixture_path("procroot"), fixture_path("sysroot"));
}
ProcFs v1_fs() {
  return ProcFs(fixture_path("procroot_v1"), fixture_path("sysroot_v1"));
}

TEST(ProcFsFiles, ReadsAPidFileWhole) {
  auto text = v2_fs().read_pid_file(100, "cmdline");
  ASSERT_TRUE(text.ok()) << text.error().message;
  EXPECT_EQ(*text, std::string("/usr/bin/app\0--port\0"
                               "8080\0",
                               25));
}

TEST(ProcFsFiles, EmptyFileIsOk) {
  auto text = v2_fs().read_pid_file(300, "cmdline");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "");
}

TEST(ProcFsFiles, MissingFileOfALiveProcessIsNotFound) {
  auto text = v2_fs().read_pid_file(200, "smaps_rollup");
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.error().kind, ReadErrorKind::kNotFound);
  EXPECT_EQ(text.error().path, fixture_path("procroot") + "/200/smaps_rollup");
  EXPECT_FALSE(text.error().message.empty());
}

TEST(ProcFsFiles, MissingPidDirectoryIsProcessGone) {
  auto text = v2_fs().read_pid_file(999, "status");
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.error().kind, ReadErrorKind::kProcessGone);
  EXPECT_EQ(text.error().path, fixture_path("procroot") + "/999/status");
}

TEST(ProcFsFiles, ReadingADirectoryIsAnOtherError) {
  auto text = v2_fs().read_pid_file(100, "task");
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.error().kind, ReadErrorKind::kOther);  // EISDIR
}

TEST(ProcFsFiles, ReadsFilesLargerThanOneChunk) {
  // smaps of a big process runs to megabytes; ProcFs reads in 64 KiB chunks.
  char path[] = "/tmp/memdx-procfs-test-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  std::string content;
  for (int i = 0; content.size() < 200 * 1024; ++i) content += "line " + std::to_string(i) + "\n";
  ASSERT_EQ(::write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
  ::close(fd);
  auto text = v2_fs().read_file(path);
  ::unlink(path);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->size(), content.size());
  EXPECT_EQ(*text, content);
}

TEST(ProcFsProcesses, ProcessExists) {
  ProcFs fs = v2_fs();
  EXPECT_TRUE(fs.process_exists(100));
  EXPECT_TRUE(fs.process_exists(400));
  EXPECT_FALSE(fs.process_exists(999));
}

TEST(ProcFsProcesses, ListPidsIsNumericEntriesAscending) {
  // "self", "pressure", "meminfo", "uptime" and "42abc" are not pids; 1000 sorts after 400.
  auto pids = v2_fs().list_pids();
  ASSERT_TRUE(pids.ok());
  EXPECT_EQ(*pids, (std::vector<pid_t>{100, 200, 300, 400, 1000}));
}

TEST(ProcFsProcesses, AnUnlistableRootIsAnErrorNotAnEmptyList) {
  // Out of file descriptors reads the same way: "no processes" would make every one look exited.
  auto pids = ProcFs(fixture_path("no-such-root")).list_pids();
  ASSERT_FALSE(pids.ok());
  EXPECT_EQ(pids.error().kind, ReadErrorKind::kNotFound);
}

TEST(ProcFsProcesses, ThreadIds) {
  ProcFs fs = v2_fs();
  EXPECT_EQ(fs.thread_ids(100), (std::vector<pid_t>{100, 101, 102, 103}));
  EXPECT_TRUE(fs.thread_ids(200).empty());
}

TEST(ProcFsProcesses, ThreadStackPointersSkipRunningThreads) {
  // task 100 and 101 are blocked in a syscall, 102 is in user mode ("-1 sp pc"), 103 running.
  EXPECT_EQ(v2_fs().thread_stack_pointers(100),
            (std::vector<uint64_t>{0x7ffd1c11fdc8, 0x7f3a057ff950, 0x7f3a04800e80}));
  EXPECT_TRUE(v2_fs().thread_stack_pointers(200).empty());
}

TEST(ProcFsFds, CountsByType) {
  auto counts = v2_fs().count_fds(100);
  ASSERT_TRUE(counts.ok()) << counts.error().message;
  EXPECT_EQ(counts->total, 9u);
  EXPECT_EQ(counts->count(FdType::kDevice), 1u);     // 0 -> /dev/null
  EXPECT_EQ(counts->count(FdType::kPipe), 2u);       // 1, 2
  EXPECT_EQ(counts->count(FdType::kSocket), 1u);     // 3
  EXPECT_EQ(counts->count(FdType::kEventfd), 1u);    // 4
  EXPECT_EQ(counts->count(FdType::kAnonInode), 1u);  // 5 eventpoll
  EXPECT_EQ(counts->count(FdType::kMemfd), 1u);      // 6
  EXPECT_EQ(counts->count(FdType::kRegular), 1u);    // 7: a path stat() cannot reach
  EXPECT_EQ(counts->count(FdType::kPty), 1u);        // 8 -> /dev/pts/3
}

TEST(ProcFsFds, MissingFdDirectory) {
  auto live = v2_fs().count_fds(200);
  ASSERT_FALSE(live.ok());
  EXPECT_EQ(live.error().kind, ReadErrorKind::kNotFound);
  auto gone = v2_fs().count_fds(999);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().kind, ReadErrorKind::kProcessGone);
}

TEST(ProcFsFds, CountEntriesWithoutReadingLinks) {
  auto count = v2_fs().count_fd_entries(100);
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 9u);
  auto live = v2_fs().count_fd_entries(200);
  ASSERT_FALSE(live.ok());
  EXPECT_EQ(live.error().kind, ReadErrorKind::kNotFound);
  auto gone = v2_fs().count_fd_entries(999);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().kind, ReadErrorKind::kProcessGone);
}

TEST(ProcFsSystem, Meminfo) {
  auto info = v2_fs().meminfo();
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->mem_total_bytes, 24683620 * kKiB);
  EXPECT_EQ(info->mem_available_bytes, 24457316 * kKiB);

  auto missing = v1_fs().meminfo();
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().kind, ReadErrorKind::kNotFound);
}

TEST(ProcFsSystem, MemoryPressure) {
  auto psi = v2_fs().system_memory_pressure();
  ASSERT_TRUE(psi);
  ASSERT_TRUE(psi->some);
  EXPECT_DOUBLE_EQ(psi->some->avg10, 0.12);
  EXPECT_EQ(psi->some->total_us, 4242u);
  ASSERT_TRUE(psi->full);
  EXPECT_EQ(psi->full->total_us, 1000u);
  EXPECT_FALSE(v1_fs().system_memory_pressure());  // kernel without PSI
}

TEST(ProcFsCgroup, V2MemoryController) {
  auto cg = v2_fs().memory_cgroup(100);
  ASSERT_TRUE(cg);
  EXPECT_EQ(cg->version, 2);
  EXPECT_EQ(cg->path, "/user.slice/app.service");
  EXPECT_EQ(cg->directory, fixture_path("sysroot") + "/fs/cgroup/user.slice/app.service");
  EXPECT_EQ(cg->current_bytes, 500 * kMiB);
  EXPECT_EQ(cg->max_bytes, 1024 * kMiB);
  EXPECT_FALSE(cg->high_bytes.has_value());  // "max"
  EXPECT_EQ(cg->events_oom, 2u);
  EXPECT_EQ(cg->events_oom_kill, 1u);
  EXPECT_EQ(cg->stat_anon_bytes, 300 * kMiB);
  EXPECT_EQ(cg->stat_file_bytes, 100 * kMiB);
  ASSERT_TRUE(cg->psi);
  ASSERT_TRUE(cg->psi->some);
  EXPECT_DOUBLE_EQ(cg->psi->some->avg10, 1.50);
  EXPECT_DOUBLE_EQ(cg->psi->some->avg60, 0.75);
  ASSERT_TRUE(cg->psi->full);
  EXPECT_DOUBLE_EQ(cg->psi->full->avg10, 0.50);
}

TEST(ProcFsCgroup, HybridHostUsesTheV1MemoryHierarchy) {
  // 0::/ resolves to the v2 "unified" mount, which has no memory.current: fall through to v1.
  auto cg = v1_fs().memory_cgroup(500);
  ASSERT_TRUE(cg);
  EXPECT_EQ(cg->version, 1);
  EXPECT_EQ(cg->path, "/sandbox/job-1");
  EXPECT_EQ(cg->directory, fixture_path("sysroot_v1") + "/fs/cgroup/memory/sandbox/job-1");
  EXPECT_EQ(cg->current_bytes, 1000 * kMiB);
  EXPECT_FALSE(cg->max_bytes.has_value());  // 9223372036854771712: unlimited
  EXPECT_FALSE(cg->high_bytes.has_value());
  EXPECT_FALSE(cg->events_oom.has_value());
  EXPECT_EQ(cg->events_oom_kill, 3u);
  EXPECT_EQ(cg->stat_anon_bytes, 800 * kMiB);  // v1 "rss"
  EXPECT_EQ(cg->stat_file_bytes, 100 * kMiB);  // v1 "cache"
  EXPECT_FALSE(cg->psi.has_value());
}

TEST(ProcFsCgroup, CgroupWithoutAMemoryControllerIsAbsent) {
  // pid 1000's cgroup directory does not exist; the mount's root has no memory.current either.
  EXPECT_FALSE(v2_fs().memory_cgroup(1000));
  // pid 200 has no /proc/PID/cgroup file; pid 999 does not exist.
  EXPECT_FALSE(v2_fs().memory_cgroup(200));
  EXPECT_FALSE(v2_fs().memory_cgroup(999));
}

}  // namespace
}  // namespace memdx::proc
