// /proc/meminfo and the PSI files.
#include "proc/system_files.h"

#include <gtest/gtest.h>

#include "fixture.h"

namespace memdx::proc {
namespace {

using memdx::testing::kKiB;
using memdx::testing::read_fixture;

TEST(ProcMeminfo, Linux618Capture) {
  MemInfo info = parse_meminfo(read_fixture("linux-6.18/meminfo"));
  EXPECT_EQ(info.mem_total_bytes, 24683620 * kKiB);
  EXPECT_EQ(info.mem_free_bytes, 24562068 * kKiB);
  EXPECT_EQ(info.mem_available_bytes, 24457316 * kKiB);
  EXPECT_EQ(info.cached_bytes, 24276 * kKiB);  // not SwapCached
  EXPECT_EQ(info.shmem_bytes, 8884 * kKiB);
  EXPECT_EQ(info.swap_total_bytes, 0u);
  EXPECT_EQ(info.swap_free_bytes, 0u);
}

TEST(ProcMeminfo, OldKernelWithoutMemAvailable) {
  // Linux 3.10 (MemAvailable arrived in 3.14), with swap configured.
  MemInfo info = parse_meminfo(read_fixture("old-kernel/meminfo"));
  EXPECT_EQ(info.mem_total_bytes, 8058452 * kKiB);
  EXPECT_FALSE(info.mem_available_bytes.has_value());
  EXPECT_EQ(info.mem_free_bytes, 251300 * kKiB);
  EXPECT_EQ(info.cached_bytes, 2349160 * kKiB);
  EXPECT_EQ(info.swap_total_bytes, 8265724 * kKiB);
  EXPECT_EQ(info.swap_free_bytes, 8130048 * kKiB);
  EXPECT_EQ(info.shmem_bytes, 54164 * kKiB);
}

TEST(ProcMeminfo, UnitlessHugePageCountsDoNotDisturbTheRest) {
  MemInfo info = parse_meminfo("HugePages_Total:       0\nMemTotal:       1024 kB\nHugepagesize:    2048 kB\n");
  EXPECT_EQ(info.mem_total_bytes, 1024 * kKiB);
}

TEST(ProcMeminfo, EmptyText) {
  MemInfo info = parse_meminfo("");
  EXPECT_EQ(info.mem_total_bytes, 0u);
  EXPECT_FALSE(info.mem_available_bytes.has_value());
}

TEST(ProcPsi, Linux618CaptureHasSomeAndFull) {
  Psi psi = parse_psi(read_fixture("linux-6.18/pressure_memory"));
  ASSERT_TRUE(psi.some);
  ASSERT_TRUE(psi.full);
  EXPECT_DOUBLE_EQ(psi.some->avg10, 0.0);
  EXPECT_EQ(psi.some->total_us, 0u);
  EXPECT_EQ(psi.full->total_us, 0u);
}

TEST(ProcPsi, ValuesOfBothLines) {
  Psi psi = parse_psi(read_fixture("edge/psi_full"));
  ASSERT_TRUE(psi.some);
  ASSERT_TRUE(psi.full);
  EXPECT_DOUBLE_EQ(psi.some->avg10, 12.50);
  EXPECT_DOUBLE_EQ(psi.some->avg60, 8.25);
  EXPECT_DOUBLE_EQ(psi.some->avg300, 3.00);
  EXPECT_EQ(psi.some->total_us, 1234567890123u);
  EXPECT_DOUBLE_EQ(psi.full->avg10, 7.75);
  EXPECT_DOUBLE_EQ(psi.full->avg60, 4.00);
  EXPECT_DOUBLE_EQ(psi.full->avg300, 1.25);
  EXPECT_EQ(psi.full->total_us, 987654321u);
}

TEST(ProcPsi, WithoutAFullLine) {
  // /proc/pressure/cpu before Linux 5.13 and some cgroup files have only "some".
  Psi psi = parse_psi(read_fixture("edge/psi_some_only"));
  ASSERT_TRUE(psi.some);
  EXPECT_FALSE(psi.full.has_value());
  EXPECT_DOUBLE_EQ(psi.some->avg10, 2.04);
  EXPECT_DOUBLE_EQ(psi.some->avg60, 1.10);
  EXPECT_DOUBLE_EQ(psi.some->avg300, 0.35);
  EXPECT_EQ(psi.some->total_us, 98765432u);
}

TEST(ProcPsi, UnknownFieldsAndJunkLines) {
  Psi psi = parse_psi("some avg10=1.00 avg600=9.00 avg60=x total=5\nbogus line\nfull nothing=here\n");
  ASSERT_TRUE(psi.some);
  EXPECT_DOUBLE_EQ(psi.some->avg10, 1.0);
  EXPECT_DOUBLE_EQ(psi.some->avg60, 0.0);
  EXPECT_EQ(psi.some->total_us, 5u);
  EXPECT_FALSE(psi.full.has_value());  // a line with no known field is no line
  EXPECT_FALSE(parse_psi("").some.has_value());
}

}  // namespace
}  // namespace memdx::proc
