// analyze::categorize and analyze::break_down on hand-built mappings.
#include "analyze/regions.h"

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

namespace memdx::model {
// Failure messages name the category ("anon_mmap") instead of dumping its bytes.
inline void PrintTo(RegionCategory category, std::ostream* os) {
  *os << category_name(category);
}
}  // namespace memdx::model

namespace memdx::analyze {
namespace {

using model::RegionCategory;
using proc::Mapping;

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
constexpr uint64_t kGiB = 1024 * kMiB;

Mapping mapping(uint64_t start, uint64_t size, std::string_view perms, std::string path = "", uint64_t rss = 0) {
  Mapping m;
  m.start = start;
  m.end = start + size;
  m.readable = perms[0] == 'r';
  m.writable = perms[1] == 'w';
  m.executable = perms[2] == 'x';
  m.shared = perms[3] == 's';
  m.path = std::move(path);
  m.counters.size_bytes = size;
  m.counters.rss_bytes = rss;
  m.counters.pss_bytes = rss;
  return m;
}

RegionCategory category_of(const Mapping& m, const RegionContext& context = {}) {
  return categorize({m}, 0, context);
}

// ---- one mapping on its own --------------------------------------------------------------------

TEST(AnalyzeCategorize, BrkHeap) {
  EXPECT_EQ(category_of(mapping(0x55d0c2000000, 4 * kMiB, "rw-p", "[heap]", 2 * kMiB)), RegionCategory::kHeap);
  // Even an untouched heap is the heap, not a reservation.
  EXPECT_EQ(category_of(mapping(0x55d0c2000000, 132 * kKiB, "rw-p", "[heap]", 0)), RegionCategory::kHeap);
}

TEST(AnalyzeCategorize, PrivateAnonymousWithResidentPagesIsAnonMmap) {
  EXPECT_EQ(category_of(mapping(0x7f0000000000, 64 * kMiB, "rw-p", "", 12 * kMiB)), RegionCategory::kAnonMmap);
  EXPECT_EQ(category_of(mapping(0x7f0000000000, 1 * kMiB, "rw-p", "[anon:v8 heap]", 4 * kKiB)),
            RegionCategory::kAnonMmap);
}

TEST(AnalyzeCategorize, UntouchedAnonymousIsReserved) {
  EXPECT_EQ(category_of(mapping(0x7f0000000000, 1 * kGiB, "rw-p", "", 0)), RegionCategory::kReserved);
  EXPECT_EQ(category_of(mapping(0x7f0000000000, 1 * kGiB, "rw-p", "[anon:pool]", 0)), RegionCategory::kReserved);
}

TEST(AnalyzeCategorize, SwappedOutAnonymousIsStillAnonMmap) {
  Mapping m = mapping(0x7f0000000000, 16 * kMiB, "rw-p", "", 0);
  m.counters.swap_bytes = 8 * kMiB;
  EXPECT_EQ(category_of(m), RegionCategory::kAnonMmap);
}

TEST(AnalyzeCategorize, ProtNoneIsReserved) {
  EXPECT_EQ(category_of(mapping(0x7e0000000000, 128 * kGiB, "---p")), RegionCategory::kReserved);
  // The ---p gap old glibc leaves inside a library's mapping is a reservation too.
  EXPECT_EQ(category_of(mapping(0x7f1c421c0000, 2 * kMiB, "---p", "/lib/x86_64-linux-gnu/libc-2.19.so")),
            RegionCategory::kReserved);
}

TEST(AnalyzeCategorize, MainStack) {
  EXPECT_EQ(category_of(mapping(0x7ffd1c100000, 132 * kKiB, "rw-p", "[stack]", 40 * kKiB)), RegionCategory::kStack);
  EXPECT_EQ(category_of(mapping(0x7f1c417ff000, 8 * kMiB, "rw-p", "[stack:201]", 16 * kKiB)), RegionCategory::kStack);
}

TEST(AnalyzeCategorize, GpuDriverMappings) {
  for (const char* path : {"/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/dri/renderD128", "/dev/dri/card0",
                           "/dev/kfd", "/dev/accel/accel0"}) {
    EXPECT_EQ(category_of(mapping(0x200000000, 2 * kMiB, "rw-s", path, 0)), RegionCategory::kGpu) << path;
  }
  // NVIDIA reserves huge PROT_NONE windows on its device nodes: still GPU, not a reservation.
  EXPECT_EQ(category_of(mapping(0x200000000, 64 * kGiB, "---p", "/dev/nvidia-uvm", 0)), RegionCategory::kGpu);
}

TEST(AnalyzeCategorize, Memfd) {
  Mapping m = mapping(0x7f3a06100000, 1 * kMiB, "rw-s", "/memfd:pool", 512 * kKiB);
  m.deleted = true;
  EXPECT_EQ(category_of(m), RegionCategory::kMemfd);
  EXPECT_EQ(category_of(mapping(0x7f3a06100000, 1 * kMiB, "r--p", "/memfd:wayland-shm", 4 * kKiB)),
            RegionCategory::kMemfd);
}

TEST(AnalyzeCategorize, SharedAnonymousAndSysV) {
  Mapping zero = mapping(0x7f3a06200000, 1 * kMiB, "rw-s", "/dev/zero", 256 * kKiB);
  zero.deleted = true;
  EXPECT_EQ(category_of(zero), RegionCategory::kShmem);
  Mapping sysv = mapping(0x7f3a06300000, 1 * kMiB, "rw-s", "/SYSV00000000", 64 * kKiB);
  sysv.deleted = true;
  EXPECT_EQ(category_of(sysv), RegionCategory::kShmem);
  EXPECT_EQ(category_of(mapping(0x7f3a06300000, 1 * kMiB, "rw-s", "", 8 * kKiB)), RegionCategory::kShmem);
  EXPECT_EQ(category_of(mapping(0x7f3a06300000, 1 * kMiB, "rw-s", "[anon_shmem:ring]", 8 * kKiB)),
            RegionCategory::kShmem);
}

TEST(AnalyzeCategorize, PrivateDevZeroIsAnonymousMemory) {
  // A private mapping of /dev/zero is anonymous memory, though /proc still shows the path.
  EXPECT_EQ(category_of(mapping(0x7f3a06200000, 1 * kMiB, "rw-p", "/dev/zero", 256 * kKiB)), RegionCategory::kAnonMmap);
}

TEST(AnalyzeCategorize, FilesOnTmpfsAreTmpfs) {
  RegionContext context;
  context.tmpfs_devices = {{0, 26}, {0, 25}};
  Mapping shm = mapping(0x7f3a06000000, 1 * kMiB, "rw-s", "/dev/shm/ring buffer", 1 * kMiB);
  shm.dev_major = 0;
  shm.dev_minor = 26;
  EXPECT_EQ(category_of(shm, context), RegionCategory::kTmpfs);
  // Same path on a device that is not tmpfs: an ordinary file.
  shm.dev_minor = 27;
  EXPECT_EQ(category_of(shm, context), RegionCategory::kFile);
  // Without a tmpfs list nothing is tmpfs.
  shm.dev_minor = 26;
  EXPECT_EQ(category_of(shm), RegionCategory::kFile);
}

TEST(AnalyzeCategorize, KernelProvidedMappings) {
  EXPECT_EQ(category_of(mapping(0x7ffd1c1f0000, 16 * kKiB, "r--p", "[vvar]")), RegionCategory::kSpecial);
  EXPECT_EQ(category_of(mapping(0x7ffd1c1f4000, 8 * kKiB, "r--p", "[vvar_vclock]")), RegionCategory::kSpecial);
  EXPECT_EQ(category_of(mapping(0x7ffd1c1f6000, 8 * kKiB, "r-xp", "[vdso]", 8 * kKiB)), RegionCategory::kSpecial);
  EXPECT_EQ(category_of(mapping(0xffffffffff600000, 4 * kKiB, "--xp", "[vsyscall]")), RegionCategory::kSpecial);
}

TEST(AnalyzeCategorize, LibrariesAndMappedFiles) {
  const std::string libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
  EXPECT_EQ(category_of(mapping(0x7f3a06428000, 1620 * kKiB, "r-xp", libc, 1200 * kKiB)), RegionCategory::kFile);
  EXPECT_EQ(category_of(mapping(0x7f3a06619000, 8 * kKiB, "rw-p", libc, 8 * kKiB)), RegionCategory::kFile);
  EXPECT_EQ(category_of(mapping(0x7f3a06700000, 1 * kGiB, "r--s", "/data/index.bin", 0)), RegionCategory::kFile);
}

// ---- mappings that need their neighbours -------------------------------------------------------

TEST(AnalyzeCategorize, ThreadStackSitsOnAGuardPage) {
  std::vector<Mapping> maps = {mapping(0x7f3a04000000, 4 * kKiB, "---p"),
                               mapping(0x7f3a04001000, 8 * kMiB, "rw-p", "", 64 * kKiB)};
  EXPECT_EQ(categorize(maps, 0, {}), RegionCategory::kReserved);
  EXPECT_EQ(categorize(maps, 1, {}), RegionCategory::kStack);
  // An untouched stack is still a stack, not a reservation.
  maps[1].counters.rss_bytes = 0;
  EXPECT_EQ(categorize(maps, 1, {}), RegionCategory::kStack);
  // A 1 MiB guard (the largest glibc is given) still counts.
  std::vector<Mapping> big_guard = {mapping(0x7f3a04000000, 1 * kMiB, "---p"),
                                    mapping(0x7f3a04100000, 8 * kMiB, "rw-p", "", 64 * kKiB)};
  EXPECT_EQ(categorize(big_guard, 1, {}), RegionCategory::kStack);
}

TEST(AnalyzeCategorize, NotAGuardPage) {
  // Too big to be a guard: the PROT_NONE tail of another arena.
  std::vector<Mapping> large = {mapping(0x7f3a00000000, 2 * kMiB, "---p"),
                                mapping(0x7f3a00200000, 8 * kMiB, "rw-p", "", 64 * kKiB)};
  EXPECT_EQ(categorize(large, 1, {}), RegionCategory::kAnonMmap);
  // Not adjacent.
  std::vector<Mapping> gap = {mapping(0x7f3a04000000, 4 * kKiB, "---p"),
                              mapping(0x7f3a04002000, 8 * kMiB, "rw-p", "", 64 * kKiB)};
  EXPECT_EQ(categorize(gap, 1, {}), RegionCategory::kAnonMmap);
  // A file's ---p piece is no guard.
  std::vector<Mapping> file_below = {mapping(0x7f3a04000000, 4 * kKiB, "---p", "/usr/lib/libx.so"),
                                     mapping(0x7f3a04001000, 8 * kMiB, "rw-p", "", 64 * kKiB)};
  EXPECT_EQ(categorize(file_below, 1, {}), RegionCategory::kAnonMmap);
  // Executable memory above a guard is JIT code, not a stack.
  std::vector<Mapping> jit = {mapping(0x7f3a04000000, 4 * kKiB, "---p"),
                              mapping(0x7f3a04001000, 8 * kMiB, "rwxp", "", 64 * kKiB)};
  EXPECT_EQ(categorize(jit, 1, {}), RegionCategory::kAnonMmap);
  // The first mapping has nothing below it.
  EXPECT_EQ(categorize({mapping(0x1000, 8 * kMiB, "rw-p", "", 4 * kKiB)}, 0, {}), RegionCategory::kAnonMmap);
}

TEST(AnalyzeCategorize, GlibcArenaKeepsItsRwPartAsAnonMmap) {
  // malloc's non-main arenas: 64 MiB reserved, the used part rw at the bottom, ---p above it.
  std::vector<Mapping> arena = {mapping(0x55d0c2000000, 4 * kMiB, "rw-p", "[heap]", 2 * kMiB),
                                mapping(0x7f3a00000000, 132 * kKiB, "rw-p", "", 132 * kKiB),
                                mapping(0x7f3a00021000, 64 * kMiB - 132 * kKiB, "---p")};
  EXPECT_EQ(categorize(arena, 1, {}), RegionCategory::kAnonMmap);
  EXPECT_EQ(categorize(arena, 2, {}), RegionCategory::kReserved);
}

TEST(AnalyzeCategorize, ThreadStackPointerMarksAStack) {
  std::vector<Mapping> maps = {mapping(0x7f3a05000000, 8 * kMiB, "rw-p", "", 32 * kKiB)};
  RegionContext context;
  context.thread_stack_pointers = {0x7f3a057ff950};
  EXPECT_EQ(categorize(maps, 0, context), RegionCategory::kStack);
  context.thread_stack_pointers = {0x7f3a05000000};  // first byte: inside
  EXPECT_EQ(categorize(maps, 0, context), RegionCategory::kStack);
  context.thread_stack_pointers = {0x7f3a05800000};  // end is exclusive
  EXPECT_EQ(categorize(maps, 0, context), RegionCategory::kAnonMmap);
  context.thread_stack_pointers = {0x1000, 0x7ffd1c11fdc8};
  EXPECT_EQ(categorize(maps, 0, context), RegionCategory::kAnonMmap);
  // An untouched stack that a thread is blocked on is a stack, not a reservation.
  maps[0].counters.rss_bytes = 0;
  context.thread_stack_pointers = {0x7f3a057ff950};
  EXPECT_EQ(categorize(maps, 0, context), RegionCategory::kStack);
}

TEST(AnalyzeCategorize, ParsedFromSmapsText) {
  auto maps = proc::parse_smaps(
      "7f0000000000-7f0000001000 ---p 00000000 00:00 0 \n"
      "7f0000001000-7f0000801000 rw-p 00000000 00:00 0 \n"
      "Rss:                  20 kB\n"
      "7f0000900000-7f0000a00000 rw-s 00000000 00:01 5120                       /dev/zero (deleted)\n"
      "Rss:                 128 kB\n"
      "7f0000a00000-7f0000b00000 rw-s 00000000 00:01 4096                       /memfd:x (deleted)\n"
      "Rss:                 128 kB\n"
      "7ffc1b3f0000-7ffc1b3f4000 r--p 00000000 00:00 0                          [vvar]\n");
  ASSERT_EQ(maps.size(), 5u);
  EXPECT_EQ(categorize(maps, 0, {}), RegionCategory::kReserved);
  EXPECT_EQ(categorize(maps, 1, {}), RegionCategory::kStack);
  EXPECT_EQ(categorize(maps, 2, {}), RegionCategory::kShmem);
  EXPECT_EQ(categorize(maps, 3, {}), RegionCategory::kMemfd);
  EXPECT_EQ(categorize(maps, 4, {}), RegionCategory::kSpecial);
}

// ---- break_down --------------------------------------------------------------------------------

std::vector<Mapping> small_process() {
  const std::string app = "/usr/bin/app";
  const std::string libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
  std::vector<Mapping> maps = {
      mapping(0x55d0c0a00000, 8 * kKiB, "r--p", app, 8 * kKiB),
      mapping(0x55d0c0a02000, 64 * kKiB, "r-xp", app, 60 * kKiB),
      mapping(0x55d0c0a12000, 8 * kKiB, "rw-p", app, 8 * kKiB),
      mapping(0x55d0c2000000, 4 * kMiB, "rw-p", "[heap]", 2 * kMiB),
      mapping(0x7f3a00000000, 10 * kMiB, "rw-p", "", 8 * kMiB),
      mapping(0x7f3a00a00000, 54 * kMiB, "---p"),
      mapping(0x7f3a04000000, 4 * kKiB, "---p"),
      mapping(0x7f3a04001000, 8 * kMiB, "rw-p", "", 64 * kKiB),
      mapping(0x7f3a06200000, 1 * kMiB, "rw-s", "/dev/zero", 256 * kKiB),
      mapping(0x7f3a06400000, 160 * kKiB, "r--p", libc, 160 * kKiB),
      mapping(0x7f3a06428000, 1620 * kKiB, "r-xp", libc, 1200 * kKiB),
      mapping(0x7f3a06619000, 8 * kKiB, "rw-p", libc, 8 * kKiB),
      mapping(0x7ffd1c100000, 132 * kKiB, "rw-p", "[stack]", 40 * kKiB),
      mapping(0x7ffd1c1f4000, 8 * kKiB, "r-xp", "[vdso]", 8 * kKiB),
  };
  maps[4].counters.swap_bytes = 1 * kMiB;
  maps[8].deleted = true;
  maps[8].counters.pss_bytes = 128 * kKiB;
  return maps;
}

TEST(AnalyzeBreakDown, TotalsPerCategoryInCategoryOrder) {
  RegionBreakdown b = break_down(small_process(), {}, 10);
  ASSERT_EQ(b.totals.size(), 7u);
  EXPECT_EQ(b.totals[0].category, RegionCategory::kHeap);
  EXPECT_EQ(b.totals[1].category, RegionCategory::kAnonMmap);
  EXPECT_EQ(b.totals[1].count, 1u);
  EXPECT_EQ(b.totals[1].vsz_bytes, 10 * kMiB);
  EXPECT_EQ(b.totals[1].rss_bytes, 8 * kMiB);
  EXPECT_EQ(b.totals[1].swap_bytes, 1 * kMiB);
  EXPECT_EQ(b.totals[2].category, RegionCategory::kStack);
  EXPECT_EQ(b.totals[2].count, 2u);
  EXPECT_EQ(b.totals[2].vsz_bytes, 8 * kMiB + 132 * kKiB);
  EXPECT_EQ(b.totals[2].rss_bytes, 104 * kKiB);
  EXPECT_EQ(b.totals[3].category, RegionCategory::kFile);
  EXPECT_EQ(b.totals[3].count, 6u);
  EXPECT_EQ(b.totals[3].rss_bytes, (8 + 60 + 8 + 160 + 1200 + 8) * kKiB);
  EXPECT_EQ(b.totals[4].category, RegionCategory::kShmem);
  EXPECT_EQ(b.totals[4].pss_bytes, 128 * kKiB);
  EXPECT_EQ(b.totals[5].category, RegionCategory::kReserved);
  EXPECT_EQ(b.totals[5].count, 2u);
  EXPECT_EQ(b.totals[5].vsz_bytes, 54 * kMiB + 4 * kKiB);
  EXPECT_EQ(b.totals[6].category, RegionCategory::kSpecial);
}

TEST(AnalyzeBreakDown, ModulesSplitCodeFromData) {
  RegionBreakdown b = break_down(small_process(), {}, 10);
  ASSERT_EQ(b.modules.size(), 2u);
  EXPECT_EQ(b.modules[0].path, "/usr/lib/x86_64-linux-gnu/libc.so.6");  // larger RSS first
  EXPECT_EQ(b.modules[0].code_vsz_bytes, 1620 * kKiB);
  EXPECT_EQ(b.modules[0].code_rss_bytes, 1200 * kKiB);
  EXPECT_EQ(b.modules[0].data_vsz_bytes, 168 * kKiB);  // r--p and rw-p
  EXPECT_EQ(b.modules[0].data_rss_bytes, 168 * kKiB);
  EXPECT_EQ(b.modules[0].pss_bytes, 1368 * kKiB);
  EXPECT_EQ(b.modules[1].path, "/usr/bin/app");
  EXPECT_EQ(b.modules[1].code_vsz_bytes, 64 * kKiB);
  EXPECT_EQ(b.modules[1].code_rss_bytes, 60 * kKiB);
  EXPECT_EQ(b.modules[1].data_vsz_bytes, 16 * kKiB);
  EXPECT_EQ(b.modules[1].data_rss_bytes, 16 * kKiB);
}

TEST(AnalyzeBreakDown, ModulesWithEqualRssSortByPath) {
  std::vector<Mapping> maps = {mapping(0x1000, 4 * kKiB, "r-xp", "/b.so", 4 * kKiB),
                               mapping(0x2000, 4 * kKiB, "r-xp", "/a.so", 4 * kKiB)};
  RegionBreakdown b = break_down(maps, {}, 10);
  ASSERT_EQ(b.modules.size(), 2u);
  EXPECT_EQ(b.modules[0].path, "/a.so");
  EXPECT_EQ(b.modules[1].path, "/b.so");
}

TEST(AnalyzeBreakDown, TopRegionsByRssThenVszCutAtTopCount) {
  RegionBreakdown b = break_down(small_process(), {}, 5);
  ASSERT_EQ(b.top.size(), 5u);
  EXPECT_EQ(b.top[0].label, "[anon]");
  EXPECT_EQ(b.top[0].rss_bytes, 8 * kMiB);
  EXPECT_EQ(b.top[0].perms, "rw-p");
  EXPECT_EQ(b.top[0].start, 0x7f3a00000000u);
  EXPECT_EQ(b.top[0].end, 0x7f3a00a00000u);
  EXPECT_EQ(b.top[0].vsz_bytes, 10 * kMiB);
  EXPECT_EQ(b.top[0].swap_bytes, 1 * kMiB);
  EXPECT_EQ(b.top[1].label, "[heap]");
  EXPECT_EQ(b.top[2].label, "/usr/lib/x86_64-linux-gnu/libc.so.6");
  EXPECT_EQ(b.top[2].category, RegionCategory::kFile);
  EXPECT_EQ(b.top[3].label, "/dev/zero (deleted)");
  EXPECT_EQ(b.top[3].category, RegionCategory::kShmem);
  EXPECT_EQ(b.top[4].rss_bytes, 160 * kKiB);
}

TEST(AnalyzeBreakDown, EqualRssRanksTheLargerMappingFirst) {
  std::vector<Mapping> maps = {mapping(0x1000, 4 * kKiB, "r--p", "/small", 0), mapping(0x10000, 64 * kGiB, "---p"),
                               mapping(0x100000000000, 1 * kMiB, "rw-p", "", 0)};
  RegionBreakdown b = break_down(maps, {}, 2);
  ASSERT_EQ(b.top.size(), 2u);
  EXPECT_EQ(b.top[0].vsz_bytes, 64 * kGiB);
  EXPECT_EQ(b.top[0].category, RegionCategory::kReserved);
  EXPECT_EQ(b.top[1].vsz_bytes, 1 * kMiB);
}

TEST(AnalyzeBreakDown, TopCountLargerThanOrZero) {
  EXPECT_EQ(break_down(small_process(), {}, 100).top.size(), small_process().size());
  RegionBreakdown none = break_down(small_process(), {}, 0);
  EXPECT_TRUE(none.top.empty());
  EXPECT_EQ(none.totals.size(), 7u);  // totals do not depend on the cut
}

TEST(AnalyzeBreakDown, Labels) {
  std::vector<Mapping> maps = {mapping(0x7f3a04000000, 4 * kKiB, "---p"),
                               mapping(0x7f3a04001000, 8 * kMiB, "rw-p", "", 64 * kKiB),
                               mapping(0x7f3a05000000, 1 * kMiB, "rw-s", "", 32 * kKiB),
                               mapping(0x7f3a06000000, 1 * kMiB, "rw-p", "[anon:jit]", 16 * kKiB)};
  RegionBreakdown b = break_down(maps, {}, 10);
  ASSERT_EQ(b.top.size(), 4u);
  EXPECT_EQ(b.top[0].label, "[thread stack]");
  EXPECT_EQ(b.top[1].label, "[shared anon]");
  EXPECT_EQ(b.top[2].label, "[anon:jit]");
  EXPECT_EQ(b.top[3].label, "[anon]");
  EXPECT_EQ(b.top[3].category, RegionCategory::kReserved);
}

TEST(AnalyzeBreakDown, EmptyInput) {
  RegionBreakdown b = break_down({}, {}, 10);
  EXPECT_TRUE(b.totals.empty());
  EXPECT_TRUE(b.top.empty());
  EXPECT_TRUE(b.modules.empty());
}

}  // namespace
}  // namespace memdx::analyze
