// /proc/PID/cgroup, /proc/PID/mountinfo and the cgroup memory controller's files.
#include "proc/cgroup_files.h"

#include <gtest/gtest.h>

#include "fixture.h"

namespace memdx::proc {
namespace {

using memdx::testing::read_fixture;

using Strings = std::vector<std::string>;

// ---- /proc/PID/cgroup ------------------------------------------------------------------------

TEST(ProcCgroupFile, V2Only) {
  auto entries = parse_proc_cgroup(read_fixture("new-kernel/cgroup"));
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].hierarchy_id, 0);
  EXPECT_TRUE(entries[0].controllers.empty());
  EXPECT_EQ(entries[0].path, "/user.slice/user-1000.slice/user@1000.service/app.slice/app-memdx.scope");

  auto simple = parse_proc_cgroup("0::/user.slice/x.service\n");
  ASSERT_EQ(simple.size(), 1u);
  EXPECT_EQ(simple[0].path, "/user.slice/x.service");
}

TEST(ProcCgroupFile, HybridCapturedOnThisMachine) {
  auto entries = parse_proc_cgroup(read_fixture("linux-6.18/cgroup"));
  ASSERT_EQ(entries.size(), 10u);
  EXPECT_EQ(entries[0].hierarchy_id, 9);
  EXPECT_EQ(entries[0].controllers, Strings{"name=systemd"});
  EXPECT_EQ(entries[0].path, "/");
  EXPECT_EQ(entries[5].hierarchy_id, 4);
  EXPECT_EQ(entries[5].controllers, Strings{"memory"});
  EXPECT_EQ(entries[5].path, "/sandbox/job-1");
  EXPECT_EQ(entries[9].hierarchy_id, 0);
  EXPECT_TRUE(entries[9].controllers.empty());
  EXPECT_EQ(entries[9].path, "/");
}

TEST(ProcCgroupFile, V1WithCombinedControllers) {
  auto entries = parse_proc_cgroup(read_fixture("edge/cgroup_v1"));
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[0].hierarchy_id, 12);
  EXPECT_EQ(entries[0].controllers, Strings{"memory"});
  EXPECT_EQ(entries[0].path, "/docker/3f2a");
  EXPECT_EQ(entries[1].controllers, (Strings{"cpu", "cpuacct"}));
  EXPECT_EQ(entries[2].controllers, (Strings{"net_cls", "net_prio"}));
  EXPECT_EQ(entries[2].path, "/");
  EXPECT_EQ(entries[3].controllers, Strings{"name=systemd"});
}

TEST(ProcCgroupFile, PathMayContainColonsAndJunkIsSkipped) {
  auto entries = parse_proc_cgroup("0::/a:b/c\nno colons\n1:only-one\n");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].path, "/a:b/c");
  EXPECT_TRUE(parse_proc_cgroup("").empty());
}

// ---- /proc/PID/mountinfo ---------------------------------------------------------------------

TEST(ProcMountinfo, HybridCapturedOnThisMachine) {
  auto mounts = parse_mountinfo(read_fixture("linux-6.18/mountinfo"));
  ASSERT_EQ(mounts.size(), 19u);
  EXPECT_EQ(mounts[0].mount_point, "/proc");
  EXPECT_EQ(mounts[0].fs_type, "proc");
  EXPECT_EQ(mounts[0].dev_major, 0u);
  EXPECT_EQ(mounts[0].dev_minor, 20u);

  EXPECT_EQ(mounts[5].mount_point, "/");
  EXPECT_EQ(mounts[5].dev_major, 254u);  // decimal here, unlike smaps
  EXPECT_EQ(mounts[5].dev_minor, 0u);
  EXPECT_EQ(mounts[5].fs_type, "ext4");
  EXPECT_EQ(mounts[5].super_options, "rw,discard,resv_strict,resuid=65534,resgid=65534");

  const MountEntry& memory = mounts[12];
  EXPECT_EQ(memory.mount_point, "/sys/fs/cgroup/memory");
  EXPECT_EQ(memory.fs_type, "cgroup");
  EXPECT_EQ(memory.super_options, "rw,memory");
  EXPECT_EQ(memory.root, "/");

  const MountEntry& unified = mounts.back();
  EXPECT_EQ(unified.mount_point, "/sys/fs/cgroup/unified");
  EXPECT_EQ(unified.fs_type, "cgroup2");
  EXPECT_EQ(unified.super_options, "rw");
}

TEST(ProcMountinfo, OptionalFieldsAndOctalEscapes) {
  auto mounts = parse_mountinfo(read_fixture("new-kernel/mountinfo"));
  ASSERT_EQ(mounts.size(), 8u);
  EXPECT_EQ(mounts[2].mount_point, "/sys/fs/cgroup");
  EXPECT_EQ(mounts[2].fs_type, "cgroup2");
  EXPECT_EQ(mounts[2].super_options, "rw,nsdelegate,memory_recursiveprot");
  EXPECT_EQ(mounts[3].dev_major, 259u);
  EXPECT_EQ(mounts[3].dev_minor, 2u);

  // two optional fields ("shared:274 master:1") before the separator
  EXPECT_EQ(mounts[5].mount_point, "/media/usb stick");
  EXPECT_EQ(mounts[5].fs_type, "vfat");
  EXPECT_EQ(mounts[5].super_options, "rw,fmask=0022,dmask=0022");

  // \134 is a backslash, \011 a tab; the root field is decoded too
  EXPECT_EQ(mounts[6].root, "/data\\dir");
  EXPECT_EQ(mounts[6].mount_point, "/mnt/back\\slash\ttab");
  EXPECT_EQ(mounts[6].fs_type, "tmpfs");
  EXPECT_EQ(mounts[6].dev_major, 0u);
  EXPECT_EQ(mounts[6].dev_minor, 49u);

  EXPECT_EQ(mounts[7].mount_point, "/run/user/1000");
}

TEST(ProcMountinfo, EscapeAtTheVeryEndAndBrokenEscapes) {
  auto mounts = parse_mountinfo(
      "1 0 0:1 / /mnt/end\\040 rw - tmpfs none rw\n"
      "2 0 0:2 / /mnt/bad\\09x rw - tmpfs none rw\n"
      "3 0 0:3 / /mnt/short\\04 rw - tmpfs none rw\n");
  ASSERT_EQ(mounts.size(), 3u);
  EXPECT_EQ(mounts[0].mount_point, "/mnt/end ");
  EXPECT_EQ(mounts[1].mount_point, "/mnt/bad\\09x");  // 9 is not octal: kept as is
  EXPECT_EQ(mounts[2].mount_point, "/mnt/short\\04");
}

TEST(ProcMountinfo, LinesWithoutSeparatorOrFsTypeAreSkipped) {
  auto mounts = parse_mountinfo(
      "1 0 0:1 / /a rw shared:1 tmpfs none rw\n"  // no " - "
      "2 0 0:2 / /b rw -\n"                       // nothing after the separator
      "3 0 nodev / /c rw - tmpfs none rw\n"       // no major:minor
      "short line\n"
      "4 0 0:4 / /d rw - tmpfs\n");  // fs type but no source or options
  ASSERT_EQ(mounts.size(), 1u);
  EXPECT_EQ(mounts[0].mount_point, "/d");
  EXPECT_EQ(mounts[0].fs_type, "tmpfs");
  EXPECT_EQ(mounts[0].super_options, "");
}

// ---- memory.max / memory.limit_in_bytes ------------------------------------------------------

TEST(ProcMemoryLimit, MaxMeansNoLimit) {
  EXPECT_FALSE(parse_memory_limit("max\n"));
  EXPECT_FALSE(parse_memory_limit("max"));
}

TEST(ProcMemoryLimit, ANumberIsBytes) {
  EXPECT_EQ(parse_memory_limit("1073741824\n"), 1073741824u);
  EXPECT_EQ(parse_memory_limit("0\n"), 0u);
  EXPECT_EQ(parse_memory_limit(read_fixture("sysroot/fs/cgroup/user.slice/app.service/memory.max")), 1073741824u);
}

TEST(ProcMemoryLimit, CgroupV1SentinelIsUnlimited) {
  // PAGE_COUNTER_MAX * 4096 on 64-bit: cgroup v1's "no limit".
  EXPECT_FALSE(parse_memory_limit("9223372036854771712\n"));
  EXPECT_FALSE(parse_memory_limit(read_fixture("sysroot_v1/fs/cgroup/memory/sandbox/job-1/memory.limit_in_bytes")));
  EXPECT_FALSE(parse_memory_limit("9223372036854775807"));
  // A real, large limit well below the sentinel is kept: 1 PiB.
  EXPECT_EQ(parse_memory_limit("1125899906842624"), 1125899906842624u);
}

TEST(ProcMemoryLimit, JunkIsNoLimit) {
  EXPECT_FALSE(parse_memory_limit(""));
  EXPECT_FALSE(parse_memory_limit("-1"));
  EXPECT_FALSE(parse_memory_limit("12M"));
}

// ---- flat keyed files ------------------------------------------------------------------------

TEST(ProcFlatKeyed, MemoryEventsV2) {
  auto entries = parse_flat_keyed(read_fixture("sysroot/fs/cgroup/user.slice/app.service/memory.events"));
  ASSERT_EQ(entries.size(), 6u);
  EXPECT_EQ(entries[0].first, "low");
  EXPECT_EQ(find_key(entries, "max"), 12u);
  EXPECT_EQ(find_key(entries, "oom"), 2u);
  EXPECT_EQ(find_key(entries, "oom_kill"), 1u);
  EXPECT_EQ(find_key(entries, "oom_group_kill"), 0u);
  EXPECT_FALSE(find_key(entries, "oom_k"));
  EXPECT_FALSE(find_key(entries, "missing"));
}

TEST(ProcFlatKeyed, MemoryStatV2AndV1) {
  auto v2 = parse_flat_keyed(read_fixture("sysroot/fs/cgroup/user.slice/app.service/memory.stat"));
  EXPECT_EQ(find_key(v2, "anon"), 314572800u);
  EXPECT_EQ(find_key(v2, "file"), 104857600u);
  EXPECT_EQ(find_key(v2, "file_mapped"), 41943040u);
  EXPECT_EQ(find_key(v2, "pgmajfault"), 12u);

  auto v1 = parse_flat_keyed(read_fixture("sysroot_v1/fs/cgroup/memory/sandbox/job-1/memory.stat"));
  EXPECT_EQ(find_key(v1, "rss"), 838860800u);
  EXPECT_EQ(find_key(v1, "cache"), 104857600u);
  EXPECT_EQ(find_key(v1, "hierarchical_memory_limit"), 9223372036854771712u);
}

TEST(ProcFlatKeyed, OomControlV1AndJunk) {
  auto oom = parse_flat_keyed(read_fixture("sysroot_v1/fs/cgroup/memory/sandbox/job-1/memory.oom_control"));
  EXPECT_EQ(find_key(oom, "oom_kill"), 3u);
  EXPECT_EQ(find_key(oom, "under_oom"), 0u);

  auto junk = parse_flat_keyed("novalue\nkey notanumber\ngood 7\n\nneg -1\n");
  ASSERT_EQ(junk.size(), 1u);
  EXPECT_EQ(junk[0].first, "good");
  EXPECT_EQ(junk[0].second, 7u);
}

}  // namespace
}  // namespace memdx::proc
