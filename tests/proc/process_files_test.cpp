// /proc/PID/{status,stat,cmdline} and /proc/PID/task/TID/syscall on fixtures from several kernels.
#include "proc/process_files.h"

#include <gtest/gtest.h>

#include "fixture.h"

namespace memdx::proc {
namespace {

using memdx::testing::kKiB;
using memdx::testing::read_fixture;

// ---- status ------------------------------------------------------------------------------------

TEST(ProcStatus, Linux618CapturedFromCat) {
  Status s = parse_status(read_fixture("linux-6.18/status"));
  EXPECT_EQ(s.name, "cat");
  EXPECT_EQ(s.state, 'R');
  EXPECT_EQ(s.pid, 4049);
  EXPECT_EQ(s.ppid, 4044);
  EXPECT_EQ(s.real_uid, 0u);
  EXPECT_EQ(s.threads, 1u);
  EXPECT_FALSE(s.is_kernel_thread);
  EXPECT_EQ(s.vm_peak_bytes, 3060 * kKiB);
  EXPECT_EQ(s.vm_size_bytes, 3060 * kKiB);
  EXPECT_EQ(s.vm_lck_bytes, 0u);
  EXPECT_EQ(s.vm_hwm_bytes, 1612 * kKiB);
  EXPECT_EQ(s.vm_rss_bytes, 1612 * kKiB);
  EXPECT_EQ(s.rss_anon_bytes, 112 * kKiB);
  EXPECT_EQ(s.rss_file_bytes, 1500 * kKiB);
  EXPECT_EQ(s.rss_shmem_bytes, 0u);
  EXPECT_EQ(s.vm_swap_bytes, 0u);
}

TEST(ProcStatus, ModernProcessWithSpaceInNameAndUid) {
  Status s = parse_status(read_fixture("procroot/100/status"));
  EXPECT_EQ(s.name, "app server");
  EXPECT_EQ(s.state, 'S');
  EXPECT_EQ(s.pid, 100);
  EXPECT_EQ(s.ppid, 1);
  EXPECT_EQ(s.real_uid, 1000u);
  EXPECT_EQ(s.threads, 4u);
  EXPECT_EQ(s.vm_size_bytes, 134309216 * kKiB);  // above 2^32 kB * 1024: no truncation
  EXPECT_EQ(s.vm_peak_bytes, 134311264 * kKiB);
  EXPECT_EQ(s.vm_lck_bytes, 16 * kKiB);
  EXPECT_EQ(s.vm_swap_bytes, 1020 * kKiB);
  EXPECT_EQ(s.rss_shmem_bytes, 1792 * kKiB);
}

TEST(ProcStatus, OldKernelWithoutRssSplitLeavesItAbsent) {
  // Linux 4.4: no RssAnon/RssFile/RssShmem (added in 4.5) and no Kthread (added in 6.x).
  Status s = parse_status(read_fixture("old-kernel/status"));
  EXPECT_EQ(s.name, "olddaemon");
  EXPECT_EQ(s.pid, 200);
  EXPECT_EQ(s.ppid, 100);
  EXPECT_EQ(s.threads, 2u);
  EXPECT_FALSE(s.is_kernel_thread);
  EXPECT_EQ(s.vm_size_bytes, 78344 * kKiB);
  EXPECT_EQ(s.vm_rss_bytes, 1700 * kKiB);
  EXPECT_EQ(s.vm_hwm_bytes, 1800 * kKiB);
  EXPECT_EQ(s.vm_swap_bytes, 100 * kKiB);
  EXPECT_FALSE(s.rss_anon_bytes.has_value());
  EXPECT_FALSE(s.rss_file_bytes.has_value());
  EXPECT_FALSE(s.rss_shmem_bytes.has_value());
}

TEST(ProcStatus, KernelThreadOnOldKernelIsRecognisedByMissingVmSize) {
  Status s = parse_status(read_fixture("old-kernel/status_kthread"));
  EXPECT_EQ(s.name, "kworker/0:1H");
  EXPECT_EQ(s.state, 'I');
  EXPECT_EQ(s.ppid, 2);
  EXPECT_TRUE(s.is_kernel_thread);
  EXPECT_FALSE(s.vm_size_bytes.has_value());
  EXPECT_FALSE(s.vm_rss_bytes.has_value());
  EXPECT_FALSE(s.vm_swap_bytes.has_value());
}

TEST(ProcStatus, KernelThreadOnNewKernelSaysSo) {
  Status s = parse_status(read_fixture("new-kernel/status_kthread"));
  EXPECT_EQ(s.name, "kworker/u16:2-events_unbound");
  EXPECT_EQ(s.pid, 7);
  EXPECT_EQ(s.ppid, 2);
  EXPECT_TRUE(s.is_kernel_thread);
  EXPECT_FALSE(s.vm_rss_bytes.has_value());
}

TEST(ProcStatus, ZombieIsNotAKernelThread) {
  Status s = parse_status(read_fixture("old-kernel/status_zombie"));
  EXPECT_EQ(s.name, "defunct child");
  EXPECT_EQ(s.state, 'Z');
  EXPECT_EQ(s.pid, 400);
  EXPECT_EQ(s.real_uid, 1000u);
  EXPECT_FALSE(s.is_kernel_thread);
  EXPECT_FALSE(s.vm_size_bytes.has_value());
  EXPECT_FALSE(s.vm_rss_bytes.has_value());
}

TEST(ProcStatus, ExplicitKthreadZeroWinsOverMissingVmLines) {
  // An exiting task (mm already released, not yet a zombie) is not a kernel thread.
  Status s = parse_status(read_fixture("new-kernel/status_exiting"));
  EXPECT_EQ(s.state, 'D');
  EXPECT_FALSE(s.vm_size_bytes.has_value());
  EXPECT_FALSE(s.is_kernel_thread);
}

TEST(ProcStatus, NameKeepsInnerSpacesAndKernelEscapes) {
  // The kernel escapes a newline in comm as the two characters '\' 'n' in status.
  Status s = parse_status("Name:\tweird\\nname  x\nState:\tS (sleeping)\nVmSize:\t 4 kB\n");
  EXPECT_EQ(s.name, "weird\\nname  x");
  EXPECT_EQ(s.vm_size_bytes, 4096u);
}

TEST(ProcStatus, EmptyTextGivesDefaults) {
  Status s = parse_status("");
  EXPECT_EQ(s.name, "");
  EXPECT_EQ(s.state, '?');
  EXPECT_EQ(s.pid, 0);
  EXPECT_FALSE(s.vm_size_bytes.has_value());
}

TEST(ProcStatus, HugeValuesSaturate) {
  Status s = parse_status(
      "Name:\tbig\nState:\tR (running)\nVmSize:\t18446744073709551615 kB\n"
      "VmRSS:\t137438953472 kB\n");
  EXPECT_EQ(s.vm_size_bytes, UINT64_MAX);
  EXPECT_EQ(s.vm_rss_bytes, 137438953472ull * 1024);  // 128 TiB
}

// ---- stat --------------------------------------------------------------------------------------

TEST(ProcStat, Linux618CapturedFromCat) {
  auto st = parse_stat(read_fixture("linux-6.18/stat"));
  ASSERT_TRUE(st);
  EXPECT_EQ(st->pid, 4050);
  EXPECT_EQ(st->comm, "cat");
  EXPECT_EQ(st->state, 'R');
  EXPECT_EQ(st->ppid, 4044);
  EXPECT_EQ(st->threads, 1u);
  EXPECT_EQ(st->start_time_ticks, 73077u);
}

TEST(ProcStat, CommWithSpaces) {
  auto st = parse_stat(read_fixture("edge/stat_comm_spaces"));
  ASSERT_TRUE(st);
  EXPECT_EQ(st->pid, 4242);
  EXPECT_EQ(st->comm, "tmux: server");
  EXPECT_EQ(st->state, 'S');
  EXPECT_EQ(st->ppid, 1);
  EXPECT_EQ(st->threads, 3u);
  EXPECT_EQ(st->start_time_ticks, 987654u);
}

TEST(ProcStat, CommWithParenthesesUsesTheLastClosingOne) {
  auto st = parse_stat(read_fixture("edge/stat_comm_parens"));
  ASSERT_TRUE(st);
  EXPECT_EQ(st->comm, "a) (b");
  EXPECT_EQ(st->state, 'S');
  EXPECT_EQ(st->ppid, 1);
  EXPECT_EQ(st->threads, 3u);
  EXPECT_EQ(st->start_time_ticks, 987654u);

  auto only_parens = parse_stat(read_fixture("edge/stat_comm_close_parens"));
  ASSERT_TRUE(only_parens);
  EXPECT_EQ(only_parens->comm, ")) ");  // "4242 ()) ) S": everything up to the last ')'
  EXPECT_EQ(only_parens->start_time_ticks, 987654u);
}

TEST(ProcStat, CommWithNewline) {
  // stat prints comm raw: the newline is a real one.
  auto st = parse_stat(read_fixture("edge/stat_comm_newline"));
  ASSERT_TRUE(st);
  EXPECT_EQ(st->comm, "two\nlines");
  EXPECT_EQ(st->state, 'S');
  EXPECT_EQ(st->ppid, 1);
  EXPECT_EQ(st->start_time_ticks, 987654u);
}

TEST(ProcStat, CommOfFifteenCharacters) {
  auto st = parse_stat(read_fixture("edge/stat_comm_15"));
  ASSERT_TRUE(st);
  EXPECT_EQ(st->comm, "0123456789abcde");
  EXPECT_EQ(st->comm.size(), 15u);
  EXPECT_EQ(st->threads, 3u);
}

TEST(ProcStat, KernelThreadAndZombieFixtures) {
  auto kthread = parse_stat(read_fixture("procroot/300/stat"));
  ASSERT_TRUE(kthread);
  EXPECT_EQ(kthread->comm, "kworker/0:1H");
  EXPECT_EQ(kthread->state, 'I');
  EXPECT_EQ(kthread->ppid, 2);
  EXPECT_EQ(kthread->start_time_ticks, 50u);

  auto zombie = parse_stat(read_fixture("procroot/400/stat"));
  ASSERT_TRUE(zombie);
  EXPECT_EQ(zombie->comm, "defunct child");
  EXPECT_EQ(zombie->state, 'Z');
  EXPECT_EQ(zombie->ppid, 100);
}

TEST(ProcStat, ExitCodeOfAZombie) {
  // Field 52 (Linux >= 3.5) is the wait status: 256 is exit(1).
  std::string text = read_fixture("procroot/400/stat");
  ASSERT_TRUE(text.ends_with(" 0\n"));
  text.replace(text.size() - 3, 3, " 256\n");
  auto zombie = parse_stat(text);
  ASSERT_TRUE(zombie);
  EXPECT_EQ(zombie->exit_code, 256);
  EXPECT_EQ(zombie->state, 'Z');

  auto live = parse_stat(read_fixture("linux-6.18/stat"));
  ASSERT_TRUE(live);
  EXPECT_EQ(live->exit_code, 0);
}

TEST(ProcStat, RejectsMalformedText) {
  EXPECT_FALSE(parse_stat(""));
  EXPECT_FALSE(parse_stat("123 cat R 1"));    // no parentheses
  EXPECT_FALSE(parse_stat("123 )cat( R 1"));  // ')' before '('
  EXPECT_FALSE(parse_stat("abc (cat) R 1"));  // pid not a number
  EXPECT_FALSE(parse_stat("123 (cat)"));      // nothing after comm
  EXPECT_FALSE(parse_stat("123 (cat)   \n"));
}

TEST(ProcStat, TruncatedLineKeepsWhatItHas) {
  auto st = parse_stat("77 (short) S 5");
  ASSERT_TRUE(st);
  EXPECT_EQ(st->pid, 77);
  EXPECT_EQ(st->ppid, 5);
  EXPECT_EQ(st->threads, 0u);
  EXPECT_EQ(st->start_time_ticks, 0u);
  EXPECT_FALSE(st->exit_code.has_value());  // kernels before 3.5 stop at field 44
}

// ---- cmdline -----------------------------------------------------------------------------------

TEST(ProcCmdline, SplitsOnNul) {
  auto args = parse_cmdline(read_fixture("procroot/100/cmdline"));
  EXPECT_EQ(args, (std::vector<std::string>{"/usr/bin/app", "--port", "8080"}));
}

TEST(ProcCmdline, KeepsEmptyArgumentsAndSpaces) {
  using namespace std::string_literals;
  EXPECT_EQ(parse_cmdline("sh\0-c\0\0echo a b\0"s), (std::vector<std::string>{"sh", "-c", "", "echo a b"}));
}

TEST(ProcCmdline, RewrittenArgvWithoutTrailingNul) {
  // setproctitle()-style rewrites leave one string, often without the final NUL.
  EXPECT_EQ(parse_cmdline("nginx: worker process"), (std::vector<std::string>{"nginx: worker process"}));
}

TEST(ProcCmdline, EmptyForKernelThreadsAndZombies) {
  EXPECT_TRUE(parse_cmdline(read_fixture("procroot/300/cmdline")).empty());
  EXPECT_TRUE(parse_cmdline("").empty());
}

// ---- task/TID/syscall --------------------------------------------------------------------------

TEST(ProcSyscall, BlockedInASyscallGivesTheStackPointer) {
  EXPECT_EQ(parse_syscall_stack_pointer(read_fixture("linux-6.18/syscall")), 0x7ffe7b3f0a68u);
  EXPECT_EQ(parse_syscall_stack_pointer(read_fixture("procroot/100/task/101/syscall")), 0x7f3a057ff950u);
}

TEST(ProcSyscall, UserModeFormGivesTheStackPointer) {
  EXPECT_EQ(parse_syscall_stack_pointer("-1 0x7ffd3c2a1e40 0x7f8e1b2c3d4e\n"), 0x7ffd3c2a1e40u);
  EXPECT_EQ(parse_syscall_stack_pointer(read_fixture("procroot/100/task/102/syscall")), 0x7f3a04800e80u);
}

TEST(ProcSyscall, RunningHasNoStackPointer) {
  EXPECT_FALSE(parse_syscall_stack_pointer("running\n"));
  EXPECT_FALSE(parse_syscall_stack_pointer("running"));
  EXPECT_FALSE(parse_syscall_stack_pointer(""));
}

TEST(ProcSyscall, OtherShapesAreRejected) {
  EXPECT_FALSE(parse_syscall_stack_pointer("-1 0x7ffd3c2a1e40"));             // 2 words
  EXPECT_FALSE(parse_syscall_stack_pointer("0 0x3 0x7f5280ace000 0x20000"));  // 4 words
  EXPECT_FALSE(parse_syscall_stack_pointer("-1 stack 0x7f8e1b2c3d4e"));       // not hex
}

}  // namespace
}  // namespace memdx::proc
