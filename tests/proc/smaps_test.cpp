// /proc/PID/smaps and smaps_rollup in the layouts of Linux 3.x, 4.14-5.7 and 6.x.
#include "proc/smaps.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "fixture.h"

namespace memdx::proc {
namespace {

using memdx::testing::kGiB;
using memdx::testing::kKiB;
using memdx::testing::read_fixture;

const Mapping* find_path(const std::vector<Mapping>& mappings, const std::string& path) {
  auto it = std::find_if(mappings.begin(), mappings.end(), [&](const Mapping& m) { return m.path == path; });
  return it == mappings.end() ? nullptr : &*it;
}

// ---- smaps: the real 6.18 capture ----------------------------------------------------------------

TEST(ProcSmaps, Linux618CaptureParsesEveryMapping) {
  auto mappings = parse_smaps(read_fixture("linux-6.18/smaps"));
  ASSERT_EQ(mappings.size(), 38u);

  const Mapping& first = mappings.front();
  EXPECT_EQ(first.start, 0x562373cbb000u);
  EXPECT_EQ(first.end, 0x562373cbd000u);
  EXPECT_EQ(first.vsz_bytes(), 8 * kKiB);
  EXPECT_EQ(first.perms(), "r--p");
  EXPECT_TRUE(first.readable);
  EXPECT_FALSE(first.writable);
  EXPECT_FALSE(first.executable);
  EXPECT_FALSE(first.shared);
  EXPECT_EQ(first.offset, 0u);
  EXPECT_EQ(first.dev_major, 0xfeu);  // "fe:00" is hexadecimal
  EXPECT_EQ(first.dev_minor, 0u);
  EXPECT_EQ(first.inode, 247134u);
  EXPECT_EQ(first.path, "/usr/bin/cat");
  EXPECT_FALSE(first.deleted);
  EXPECT_EQ(first.vm_flags, "rd mr mw me");
  EXPECT_EQ(first.counters.size_bytes, 8 * kKiB);
  EXPECT_EQ(first.counters.rss_bytes, 8 * kKiB);
  EXPECT_EQ(first.counters.pss_bytes, 8 * kKiB);
  EXPECT_EQ(first.counters.private_clean_bytes, 8 * kKiB);
  EXPECT_EQ(first.counters.private_dirty_bytes, 0u);
  EXPECT_FALSE(first.counters.has_pss_split);  // per-mapping entries carry no Pss_Anon

  EXPECT_EQ(mappings[1].perms(), "r-xp");
  EXPECT_EQ(mappings[1].offset, 0x2000u);
  EXPECT_EQ(mappings[1].vm_flags, "rd ex mr mw me");

  const Mapping* heap = find_path(mappings, "[heap]");
  ASSERT_NE(heap, nullptr);
  EXPECT_EQ(heap->start, 0x5623943df000u);
  EXPECT_EQ(heap->end, 0x562394400000u);
  EXPECT_EQ(heap->counters.rss_bytes, 16 * kKiB);
  EXPECT_EQ(heap->counters.private_dirty_bytes, 16 * kKiB);
  EXPECT_EQ(heap->counters.anonymous_bytes, 16 * kKiB);
  EXPECT_EQ(heap->vm_flags, "rd wr mr mw me ac");

  const Mapping& last = mappings.back();
  EXPECT_EQ(last.start, 0xffffffffff600000u);
  EXPECT_EQ(last.end, 0xffffffffff601000u);
  EXPECT_EQ(last.perms(), "--xp");
  EXPECT_EQ(last.path, "[vsyscall]");
  EXPECT_EQ(last.vm_flags, "ex");

  size_t anonymous = std::count_if(mappings.begin(), mappings.end(), [](const Mapping& m) { return m.path.empty(); });
  EXPECT_EQ(anonymous, 4u);  // "... 00:00 0 " with trailing padding and no name
  size_t shared = std::count_if(mappings.begin(), mappings.end(), [](const Mapping& m) { return m.shared; });
  EXPECT_EQ(shared, 1u);  // gconv-modules.cache, r--s
}

TEST(ProcSmaps, Linux618CaptureSums) {
  SmapsCounters total = sum_counters(parse_smaps(read_fixture("linux-6.18/smaps")));
  EXPECT_EQ(total.rss_bytes, 1744 * kKiB);
  EXPECT_EQ(total.pss_bytes, 520 * kKiB);
  EXPECT_EQ(total.private_clean_bytes, 80 * kKiB);
  EXPECT_EQ(total.private_dirty_bytes, 116 * kKiB);
  EXPECT_EQ(total.anonymous_bytes, 116 * kKiB);
  EXPECT_EQ(total.uss_bytes(), 196 * kKiB);
  EXPECT_EQ(total.size_bytes, 0u);  // the sum of mapping sizes is not a rollup field
}

// ---- smaps: hand-made 6.x file with every field and path shape ------------------------------------

TEST(ProcSmaps, NewKernelFieldsAreIgnoredAndValuesStillRead) {
  // KSM, FilePmdMapped, THPeligible and ProtectionKey must not disturb the known counters.
  auto mappings = parse_smaps(read_fixture("new-kernel/smaps"));
  ASSERT_EQ(mappings.size(), 9u);

  const Mapping& lib = mappings[0];
  EXPECT_EQ(lib.path, "/opt/My App/lib/libfoo.so");  // spaces in the path survive
  EXPECT_EQ(lib.dev_major, 259u);                    // "103:02": majors above 255 are 3 hex digits
  EXPECT_EQ(lib.dev_minor, 2u);
  EXPECT_EQ(lib.inode, 1234567u);
  EXPECT_EQ(lib.counters.rss_bytes, 2048 * kKiB);
  EXPECT_EQ(lib.counters.pss_bytes, 1024 * kKiB);
  EXPECT_EQ(lib.counters.shared_clean_bytes, 2048 * kKiB);
  EXPECT_EQ(lib.counters.locked_bytes, 0u);
  EXPECT_EQ(lib.vm_flags, "rd ex mr mw me sd");

  const Mapping& named = mappings[3];
  EXPECT_EQ(named.path, "[anon:arena 0]");
  EXPECT_EQ(named.counters.rss_bytes, 768 * kKiB);
  EXPECT_EQ(named.counters.pss_bytes, 640 * kKiB);
  EXPECT_EQ(named.counters.shared_dirty_bytes, 256 * kKiB);
  EXPECT_EQ(named.counters.anonymous_bytes, 768 * kKiB);
  EXPECT_EQ(named.counters.uss_bytes(), 512 * kKiB);
  EXPECT_EQ(named.vm_flags, "rd wr mr mw me ac sd mg");
}

TEST(ProcSmaps, DeletedSuffixIsStrippedAndRemembered) {
  auto mappings = parse_smaps(read_fixture("new-kernel/smaps"));
  ASSERT_EQ(mappings.size(), 9u);
  EXPECT_EQ(mappings[1].path, "/tmp/plugin.so");
  EXPECT_TRUE(mappings[1].deleted);
  EXPECT_EQ(mappings[4].path, "/memfd:x");
  EXPECT_TRUE(mappings[4].deleted);
  EXPECT_TRUE(mappings[4].shared);
  EXPECT_EQ(mappings[4].perms(), "rw-s");
  EXPECT_EQ(mappings[5].path, "/dev/zero");
  EXPECT_TRUE(mappings[5].deleted);
  EXPECT_TRUE(mappings[5].shared);
  EXPECT_EQ(mappings[6].path, "/SYSV0000162e");
  EXPECT_TRUE(mappings[6].deleted);
  EXPECT_EQ(mappings[7].path, "[anon_shmem:ring]");
  EXPECT_FALSE(mappings[7].deleted);
  EXPECT_EQ(mappings[8].path, "[vvar]");
  EXPECT_FALSE(mappings[8].deleted);
  EXPECT_FALSE(mappings[0].deleted);
}

TEST(ProcSmaps, OneHundredTwentyEightGibMapping) {
  auto mappings = parse_smaps(read_fixture("new-kernel/smaps"));
  ASSERT_EQ(mappings.size(), 9u);
  const Mapping& big = mappings[2];
  EXPECT_EQ(big.path, "");
  EXPECT_EQ(big.start, 0x7e0000000000u);
  EXPECT_EQ(big.vsz_bytes(), 128 * kGiB);
  EXPECT_EQ(big.counters.size_bytes, 128 * kGiB);
  EXPECT_EQ(big.counters.rss_bytes, 40 * kGiB);
  EXPECT_EQ(big.counters.anon_huge_bytes, 40 * kGiB);
  EXPECT_EQ(big.counters.private_dirty_bytes, 40 * kGiB);
}

TEST(ProcSmaps, PathWithSpacesAndDeletedInTheMiddleIsKept) {
  auto mappings = parse_smaps(
      "7f0000000000-7f0000001000 r--p 00000000 08:01 42                         /srv/a (deleted) b/data file\n"
      "Rss:                   4 kB\n");
  ASSERT_EQ(mappings.size(), 1u);
  EXPECT_EQ(mappings[0].path, "/srv/a (deleted) b/data file");
  EXPECT_FALSE(mappings[0].deleted);
  EXPECT_EQ(mappings[0].counters.rss_bytes, 4 * kKiB);
}

// ---- smaps: older kernels ----------------------------------------------------------------------

TEST(ProcSmaps, OldKernelWithoutVmFlagsOrThpEligible) {
  auto mappings = parse_smaps(read_fixture("old-kernel/smaps"));
  ASSERT_EQ(mappings.size(), 15u);
  for (const Mapping& m : mappings) EXPECT_EQ(m.vm_flags, "") << m.path;

  EXPECT_EQ(mappings[0].path, "/usr/sbin/olddaemon");
  EXPECT_EQ(mappings[0].start, 0x400000u);
  EXPECT_EQ(mappings[0].dev_major, 8u);
  EXPECT_EQ(mappings[0].dev_minor, 1u);
  EXPECT_EQ(mappings[0].counters.rss_bytes, 200 * kKiB);
  EXPECT_EQ(mappings[0].counters.private_clean_bytes, 200 * kKiB);

  EXPECT_EQ(mappings[4].counters.swap_bytes, 100 * kKiB);
  EXPECT_EQ(mappings[7].path, "[stack:201]");  // thread stacks were named before Linux 4.5
  EXPECT_EQ(mappings[9].perms(), "---p");
  EXPECT_EQ(mappings[9].path, "/lib/x86_64-linux-gnu/libc-2.19.so");
  EXPECT_EQ(mappings.back().perms(), "r-xp");  // [vsyscall] was r-xp on old kernels

  SmapsCounters total = sum_counters(mappings);
  EXPECT_EQ(total.rss_bytes, 1700 * kKiB);
  EXPECT_EQ(total.pss_bytes, 928 * kKiB);
  EXPECT_EQ(total.anonymous_bytes, 472 * kKiB);
  EXPECT_EQ(total.private_clean_bytes, 200 * kKiB);
  EXPECT_EQ(total.private_dirty_bytes, 472 * kKiB);
  EXPECT_EQ(total.shared_clean_bytes, 1028 * kKiB);
  EXPECT_EQ(total.swap_bytes, 100 * kKiB);
  EXPECT_FALSE(total.has_pss_split);
}

TEST(ProcSmaps, PlainMapsLinesGiveZeroCounters) {
  // /proc/PID/maps has the same header lines and no counters.
  auto mappings = parse_smaps(
      "00400000-0040b000 r-xp 00000000 08:01 1048602                            /bin/cat\n"
      "7fff5a3c1000-7fff5a3e2000 rw-p 00000000 00:00 0                          [stack]\n");
  ASSERT_EQ(mappings.size(), 2u);
  EXPECT_EQ(mappings[0].vsz_bytes(), 44 * kKiB);
  EXPECT_EQ(mappings[0].counters.rss_bytes, 0u);
  EXPECT_EQ(mappings[1].path, "[stack]");
}

TEST(ProcSmaps, JunkAndCountersBeforeAnyHeaderAreIgnored) {
  auto mappings = parse_smaps(
      "Rss:                 999 kB\n"
      "not a header line\n"
      "zzzz-0040b000 r-xp 00000000 08:01 1 /bin/x\n"
      "00400000-0040b000 r-x 00000000 08:01 1 /bin/short-perms\n"
      "00400000-0040b000 r-xp 00000000 0801 1 /bin/no-colon-in-dev\n"
      "\n"
      "00400000-0040b000 r-xp 00000000 08:01 1048602 /bin/cat\n"
      "Rss:                  40 kB\n"
      "Bogus_Field:          12 kB\n"
      "Pss:               junk kB\n");
  ASSERT_EQ(mappings.size(), 1u);
  EXPECT_EQ(mappings[0].path, "/bin/cat");
  EXPECT_EQ(mappings[0].counters.rss_bytes, 40 * kKiB);
  EXPECT_EQ(mappings[0].counters.pss_bytes, 0u);
}

TEST(ProcSmaps, HugeValuesSaturate) {
  auto mappings = parse_smaps(read_fixture("edge/smaps_huge"));
  ASSERT_EQ(mappings.size(), 2u);
  const SmapsCounters& c = mappings[0].counters;
  EXPECT_EQ(c.size_bytes, UINT64_MAX);
  EXPECT_EQ(c.rss_bytes, UINT64_MAX);
  EXPECT_EQ(c.pss_bytes, UINT64_MAX);                  // 2^54 kB = 2^64 bytes
  EXPECT_EQ(c.shared_clean_bytes, UINT64_MAX - 1023);  // 2^54 - 1 kB still fits
  EXPECT_EQ(c.swap_bytes, UINT64_MAX);                 // wider than 64 bits
  EXPECT_EQ(c.locked_bytes, UINT64_MAX);

  const Mapping& big = mappings[1];
  EXPECT_EQ(big.vsz_bytes(), 128 * kGiB);
  EXPECT_EQ(big.counters.rss_bytes, 128 * kGiB);
  EXPECT_EQ(big.counters.anon_huge_bytes, 128 * kGiB);
  EXPECT_EQ(big.vm_flags, "rd wr mr mw me ac hg");
}

TEST(ProcSmaps, SumOfHugeValuesSaturates) {
  SmapsCounters total = sum_counters(parse_smaps(read_fixture("edge/smaps_huge")));
  EXPECT_EQ(total.rss_bytes, UINT64_MAX);
  EXPECT_EQ(total.pss_bytes, UINT64_MAX);
}

TEST(ProcSmaps, SumOfTwo128GibMappingsIsExact) {
  std::vector<Mapping> mappings(2);
  mappings[0].counters.rss_bytes = 128 * kGiB;
  mappings[1].counters.rss_bytes = 128 * kGiB;
  mappings[0].counters.swap_pss_bytes = 3 * kKiB;
  mappings[1].counters.has_pss_split = true;
  SmapsCounters total = sum_counters(mappings);
  EXPECT_EQ(total.rss_bytes, 256 * kGiB);
  EXPECT_EQ(total.swap_pss_bytes, 3 * kKiB);
  EXPECT_TRUE(total.has_pss_split);
}

TEST(ProcSmaps, EmptyText) {
  EXPECT_TRUE(parse_smaps("").empty());
  SmapsCounters total = sum_counters({});
  EXPECT_EQ(total.rss_bytes, 0u);
}

TEST(ProcSmaps, PermsRoundTrip) {
  Mapping m;
  EXPECT_EQ(m.perms(), "---p");
  m.readable = m.writable = m.executable = m.shared = true;
  EXPECT_EQ(m.perms(), "rwxs");
}

// ---- smaps_rollup ------------------------------------------------------------------------------

TEST(ProcSmapsRollup, Linux618Capture) {
  SmapsCounters c = parse_smaps_rollup(read_fixture("linux-6.18/smaps_rollup"));
  EXPECT_EQ(c.size_bytes, 0u);
  EXPECT_EQ(c.rss_bytes, 1700 * kKiB);
  EXPECT_EQ(c.pss_bytes, 532 * kKiB);
  EXPECT_EQ(c.pss_anon_bytes, 112 * kKiB);
  EXPECT_EQ(c.pss_file_bytes, 420 * kKiB);
  EXPECT_EQ(c.pss_shmem_bytes, 0u);
  EXPECT_TRUE(c.has_pss_split);
  EXPECT_EQ(c.shared_clean_bytes, 1492 * kKiB);
  EXPECT_EQ(c.private_clean_bytes, 96 * kKiB);
  EXPECT_EQ(c.private_dirty_bytes, 112 * kKiB);
  EXPECT_EQ(c.anonymous_bytes, 112 * kKiB);
  EXPECT_EQ(c.uss_bytes(), 208 * kKiB);
  EXPECT_EQ(c.swap_bytes, 0u);
}

TEST(ProcSmapsRollup, NewKernelWithPssDirtyAndKsm) {
  SmapsCounters c = parse_smaps_rollup(read_fixture("new-kernel/smaps_rollup"));
  EXPECT_EQ(c.rss_bytes, 41947152 * kKiB);
  EXPECT_EQ(c.pss_bytes, 41945456 * kKiB);  // Pss_Dirty right after Pss must not overwrite it
  EXPECT_EQ(c.pss_anon_bytes, 41943680 * kKiB);
  EXPECT_EQ(c.pss_file_bytes, 1088 * kKiB);
  EXPECT_EQ(c.pss_shmem_bytes, 688 * kKiB);
  EXPECT_TRUE(c.has_pss_split);
  EXPECT_EQ(c.shared_dirty_bytes, 1344 * kKiB);
  EXPECT_EQ(c.private_dirty_bytes, 41943696 * kKiB);
  EXPECT_EQ(c.anonymous_bytes, 41943808 * kKiB);
  EXPECT_EQ(c.anon_huge_bytes, 40 * kGiB);
  EXPECT_EQ(c.uss_bytes(), 41943760 * kKiB);
}

TEST(ProcSmapsRollup, OldKernelWithoutPssSplit) {
  // Linux 4.14-5.7: no Pss_Anon/Pss_File/Pss_Shmem, no Pss_Dirty.
  SmapsCounters c = parse_smaps_rollup(read_fixture("old-kernel/smaps_rollup"));
  EXPECT_FALSE(c.has_pss_split);
  EXPECT_EQ(c.pss_anon_bytes, 0u);
  EXPECT_EQ(c.pss_file_bytes, 0u);
  EXPECT_EQ(c.pss_shmem_bytes, 0u);
  EXPECT_EQ(c.rss_bytes, 10 * 1024 * kKiB);
  EXPECT_EQ(c.pss_bytes, 6 * 1024 * kKiB);
  EXPECT_EQ(c.shared_clean_bytes, 4 * 1024 * kKiB);
  EXPECT_EQ(c.private_clean_bytes, 2 * 1024 * kKiB);
  EXPECT_EQ(c.private_dirty_bytes, 4 * 1024 * kKiB);
  EXPECT_EQ(c.anonymous_bytes, 4 * 1024 * kKiB);
  EXPECT_EQ(c.anon_huge_bytes, 2 * 1024 * kKiB);
  EXPECT_EQ(c.swap_bytes, 512 * kKiB);
  EXPECT_EQ(c.swap_pss_bytes, 256 * kKiB);
  EXPECT_EQ(c.locked_bytes, 0u);
}

TEST(ProcSmapsRollup, MatchesTheSumOfItsSmaps) {
  // procroot/100 was generated so that its rollup is the sum of its smaps.
  SmapsCounters rollup = parse_smaps_rollup(read_fixture("procroot/100/smaps_rollup"));
  SmapsCounters summed = sum_counters(parse_smaps(read_fixture("procroot/100/smaps")));
  EXPECT_EQ(rollup.rss_bytes, 13768 * kKiB);
  EXPECT_EQ(rollup.rss_bytes, summed.rss_bytes);
  EXPECT_EQ(rollup.pss_bytes, summed.pss_bytes);
  EXPECT_EQ(rollup.private_dirty_bytes, summed.private_dirty_bytes);
  EXPECT_EQ(rollup.private_clean_bytes, summed.private_clean_bytes);
  EXPECT_EQ(rollup.anonymous_bytes, summed.anonymous_bytes);
  EXPECT_EQ(rollup.swap_bytes, summed.swap_bytes);
  EXPECT_TRUE(rollup.has_pss_split);
  EXPECT_FALSE(summed.has_pss_split);
}

TEST(ProcSmapsRollup, EmptyText) {
  SmapsCounters c = parse_smaps_rollup("");
  EXPECT_EQ(c.rss_bytes, 0u);
  EXPECT_FALSE(c.has_pss_split);
}

}  // namespace
}  // namespace memdx::proc
