// preflight() on constructed limits (each binding, each warning, the guidance's figures), and
// read_memory_limits() against /proc/meminfo and a memory cgroup this test creates.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <memdx/cache.h>
#include <memdx/error.h>
#include <memdx/preflight.h>

#include "pressure/test_cgroup.h"

namespace {

using memdx::MemoryLimits;
using memdx::PreflightBinding;
using memdx::PreflightRequest;
using memdx::PreflightResult;
using memdx::PreflightWarningKind;

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;

MemoryLimits machine(uint64_t total, uint64_t available) {
  MemoryLimits limits;
  limits.total_bytes = total;
  limits.available_bytes = available;
  return limits;
}

MemoryLimits in_cgroup(MemoryLimits limits, int version, std::optional<uint64_t> max, std::optional<uint64_t> high,
                       uint64_t usage, uint64_t reclaimable = 0) {
  limits.cgroup_version = version;
  limits.cgroup_max_bytes = max;
  limits.cgroup_high_bytes = high;
  limits.cgroup_usage_bytes = usage;
  limits.cgroup_reclaimable_bytes = reclaimable;
  limits.cgroup_path = "/app.slice/model.service";
  return limits;
}

PreflightRequest needing(uint64_t bytes) {
  PreflightRequest request;
  request.needed_bytes = bytes;
  return request;
}

bool has_warning(const PreflightResult& result, PreflightWarningKind kind) {
  for (const auto& warning : result.warnings) {
    if (warning.kind == kind) return !warning.message.empty();
  }
  return false;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(Preflight, FitsInMemAvailable) {
  PreflightResult result = memdx::preflight(needing(4 * kGiB), machine(16 * kGiB, 6 * kGiB));
  EXPECT_TRUE(result.can_proceed);
  EXPECT_EQ(result.binding, PreflightBinding::kMemAvailable);
  EXPECT_EQ(result.usable_bytes, 6 * kGiB);
  EXPECT_EQ(result.shortfall_bytes, 0U);
  EXPECT_TRUE(result.warnings.empty());
  EXPECT_EQ(result.guidance, "It fits: 4.00 GiB needed of 6.00 GiB usable (MemAvailable), 2.00 GiB left after.");
}

TEST(Preflight, ShortOfMemAvailableSaysHowMuchToFree) {
  PreflightResult result = memdx::preflight(needing(8 * kGiB), machine(16 * kGiB, 6 * kGiB));
  EXPECT_FALSE(result.can_proceed);
  EXPECT_EQ(result.binding, PreflightBinding::kMemAvailable);
  EXPECT_EQ(result.shortfall_bytes, 2 * kGiB);
  EXPECT_EQ(result.guidance,
            "Only 6.00 GiB of memory is available, 2.00 GiB short of the 8.00 GiB needed: free 2.00 GiB (close "
            "programs, unload models) or pick a smaller model.");
  EXPECT_FALSE(has_warning(result, PreflightWarningKind::kFitsOnlyWithSwap));  // no swap at all
}

TEST(Preflight, CgroupMaxBindsWithItsUsageAndReclaimableCache) {
  // 4 GiB limit, 3 GiB charged of which 512 MiB inactive cache: 1.5 GiB of room.
  MemoryLimits limits = in_cgroup(machine(64 * kGiB, 40 * kGiB), 2, 4 * kGiB, std::nullopt, 3 * kGiB, 512 * kMiB);
  PreflightResult result = memdx::preflight(needing(2 * kGiB), limits);
  EXPECT_FALSE(result.can_proceed);
  EXPECT_EQ(result.binding, PreflightBinding::kCgroupMax);
  EXPECT_EQ(result.usable_bytes, 1536 * kMiB);
  EXPECT_EQ(result.shortfall_bytes, 512 * kMiB);
  EXPECT_EQ(result.guidance,
            "Cgroup /app.slice/model.service has 1.50 GiB left under its memory.max (3.00 GiB of 4.00 GiB in use), "
            "512 MiB short of the 2.00 GiB needed: free 512 MiB in that cgroup or raise its memory.max by 512 MiB.");
  EXPECT_TRUE(memdx::preflight(needing(1536 * kMiB), limits).can_proceed);
}

TEST(Preflight, CgroupV1NamesItsLimitFile) {
  MemoryLimits limits = in_cgroup(machine(64 * kGiB, 40 * kGiB), 1, 4 * kGiB, std::nullopt, 3 * kGiB);
  PreflightResult result = memdx::preflight(needing(2 * kGiB), limits);
  EXPECT_EQ(result.binding, PreflightBinding::kCgroupMax);
  EXPECT_EQ(result.shortfall_bytes, 1 * kGiB);
  EXPECT_TRUE(contains(result.guidance, "raise its memory.limit_in_bytes by 1.00 GiB")) << result.guidance;
}

TEST(Preflight, CgroupHighBindsAndWarnsOfThrottling) {
  MemoryLimits limits = in_cgroup(machine(64 * kGiB, 40 * kGiB), 2, 8 * kGiB, 3 * kGiB, 2 * kGiB);
  PreflightResult result = memdx::preflight(needing(1536 * kMiB), limits);
  EXPECT_FALSE(result.can_proceed);
  EXPECT_EQ(result.binding, PreflightBinding::kCgroupHigh);
  EXPECT_EQ(result.usable_bytes, 1 * kGiB);
  EXPECT_EQ(result.shortfall_bytes, 512 * kMiB);
  EXPECT_TRUE(has_warning(result, PreflightWarningKind::kCrossesMemoryHigh));
  EXPECT_TRUE(contains(result.guidance, "raise its memory.high by 512 MiB")) << result.guidance;
  // Beyond memory.max too: the high limit still binds first, but throttling is not the only problem.
  PreflightResult beyond = memdx::preflight(needing(7 * kGiB), limits);
  EXPECT_EQ(beyond.binding, PreflightBinding::kCgroupHigh);
  EXPECT_FALSE(has_warning(beyond, PreflightWarningKind::kCrossesMemoryHigh));
}

TEST(Preflight, TooBigForTheMachine) {
  PreflightResult result = memdx::preflight(needing(12 * kGiB), machine(8 * kGiB, 7 * kGiB));
  EXPECT_FALSE(result.can_proceed);
  EXPECT_EQ(result.binding, PreflightBinding::kMemTotal);
  EXPECT_EQ(result.shortfall_bytes, 4 * kGiB);
  EXPECT_EQ(result.guidance,
            "This machine has 8.00 GiB of RAM in all, 4.00 GiB short of the 12.0 GiB needed: pick a smaller model or "
            "run it on a machine with more memory.");
}

TEST(Preflight, MinTotalIsCheckedAgainstTheMachineAndTheCgroupLimit) {
  PreflightRequest request = needing(1 * kGiB);
  request.min_total_bytes = 16 * kGiB;
  PreflightResult small_machine = memdx::preflight(request, machine(8 * kGiB, 7 * kGiB));
  EXPECT_FALSE(small_machine.can_proceed);
  EXPECT_EQ(small_machine.binding, PreflightBinding::kMemTotal);
  EXPECT_EQ(small_machine.shortfall_bytes, 8 * kGiB);

  MemoryLimits limited = in_cgroup(machine(64 * kGiB, 60 * kGiB), 2, 12 * kGiB, std::nullopt, 0);
  PreflightResult small_cgroup = memdx::preflight(request, limited);
  EXPECT_FALSE(small_cgroup.can_proceed);
  EXPECT_EQ(small_cgroup.binding, PreflightBinding::kCgroupMax);
  EXPECT_EQ(small_cgroup.shortfall_bytes, 4 * kGiB);
  EXPECT_TRUE(contains(small_cgroup.guidance,
                       "memory.max of cgroup /app.slice/model.service is 12.0 GiB, 4.00 GiB "
                       "short of the 16.0 GiB required in all"))
      << small_cgroup.guidance;

  request.min_total_bytes = 8 * kGiB;
  EXPECT_TRUE(memdx::preflight(request, machine(8 * kGiB, 7 * kGiB)).can_proceed);
}

TEST(Preflight, BelowRecommendedTotalStillProceeds) {
  PreflightRequest request = needing(1 * kGiB);
  request.recommended_total_bytes = 16 * kGiB;
  PreflightResult result = memdx::preflight(request, machine(8 * kGiB, 7 * kGiB));
  EXPECT_TRUE(result.can_proceed);
  ASSERT_EQ(result.warnings.size(), 1U);
  EXPECT_EQ(result.warnings[0].kind, PreflightWarningKind::kBelowRecommendedTotal);
  EXPECT_TRUE(contains(result.warnings[0].message, "8.00 GiB in all, under the 16.0 GiB recommended"));
}

TEST(Preflight, WarnsWhenOnlySwapWouldCoverIt) {
  MemoryLimits limits = machine(16 * kGiB, 2 * kGiB);
  limits.swap_total_bytes = 8 * kGiB;
  limits.swap_free_bytes = 4 * kGiB;
  PreflightResult result = memdx::preflight(needing(3 * kGiB), limits);
  EXPECT_FALSE(result.can_proceed);
  EXPECT_TRUE(has_warning(result, PreflightWarningKind::kFitsOnlyWithSwap));
  EXPECT_FALSE(has_warning(memdx::preflight(needing(7 * kGiB), limits), PreflightWarningKind::kFitsOnlyWithSwap));
}

TEST(Preflight, WarnsWhenLittleRoomIsLeft) {
  PreflightResult tight = memdx::preflight(needing(900 * kMiB), machine(16 * kGiB, 1 * kGiB));
  EXPECT_TRUE(tight.can_proceed);
  EXPECT_TRUE(has_warning(tight, PreflightWarningKind::kLittleRoomLeft));
  EXPECT_FALSE(has_warning(memdx::preflight(needing(1 * kGiB), machine(16 * kGiB, 8 * kGiB)),
                           PreflightWarningKind::kLittleRoomLeft));
}

TEST(Preflight, MinFreeIsKeptAfterTheAllocation) {
  PreflightRequest request = needing(4 * kGiB);
  request.min_free_bytes = 3 * kGiB;
  PreflightResult result = memdx::preflight(request, machine(16 * kGiB, 6 * kGiB));
  EXPECT_FALSE(result.can_proceed);
  EXPECT_EQ(result.shortfall_bytes, 1 * kGiB);
  EXPECT_TRUE(contains(result.guidance, "1.00 GiB short of the 4.00 GiB needed plus 3.00 GiB kept free"))
      << result.guidance;
}

TEST(Preflight, BindingNames) {
  EXPECT_STREQ(memdx::to_string(PreflightBinding::kMemAvailable), "MemAvailable");
  EXPECT_STREQ(memdx::to_string(PreflightBinding::kCgroupMax), "memory.max");
  EXPECT_STREQ(memdx::to_string(PreflightBinding::kCgroupHigh), "memory.high");
  EXPECT_STREQ(memdx::to_string(PreflightBinding::kMemTotal), "MemTotal");
}

uint64_t meminfo_bytes(const std::string& key) {
  std::istringstream lines(memdx_test::read_text("/proc/meminfo"));
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::stoull(line.substr(key.size() + 1)) * 1024;
  }
  return 0;
}

TEST(ReadMemoryLimits, MatchesProcMeminfo) {
  MemoryLimits limits = memdx::read_memory_limits();
  EXPECT_EQ(limits.total_bytes, meminfo_bytes("MemTotal"));
  EXPECT_EQ(limits.swap_total_bytes, meminfo_bytes("SwapTotal"));
  // MemAvailable moves between the two reads; by far less than this.
  uint64_t available = meminfo_bytes("MemAvailable");
  EXPECT_NEAR(static_cast<double>(limits.available_bytes), static_cast<double>(available), 256.0 * kMiB);
  EXPECT_GT(limits.available_bytes, 0U);
  EXPECT_LE(limits.available_bytes, limits.total_bytes);
  if (limits.cgroup_version == 1) {
    EXPECT_EQ(limits.cgroup_path, memdx_test::own_cgroup("memory"));
  } else if (limits.cgroup_version == 2) {
    EXPECT_EQ(limits.cgroup_path, memdx_test::own_cgroup(""));
  }
}

// In a child cgroup with a 96 MiB limit, the child sees that limit and the binding it makes.
// What a process in `directories` (it enters each: v1 and v2 twins) sees: read_memory_limits()
// and two preflights, run in a forked child that reports over a pipe.
struct SeenInCgroup {
  uint64_t max = 0;
  std::string path;
  int small_fits = 0;
  int big_fits = 0;
  int binding = 0;
  uint64_t usage = 0;
  uint64_t share = 0;  // share_of_available_memory(1.0)
};

SeenInCgroup seen_from(const std::vector<std::string>& directories) {
  int report[2];
  EXPECT_EQ(::pipe(report), 0);
  pid_t child = ::fork();
  if (child == 0) {
    ::close(report[0]);
    for (const std::string& dir : directories) {
      if (!memdx_test::write_text(dir + "/cgroup.procs", std::to_string(::getpid()))) ::_exit(2);
    }
    std::ostringstream out;
    MemoryLimits limits = memdx::read_memory_limits();
    PreflightResult small = memdx::preflight(needing(1 * kMiB));
    PreflightResult big = memdx::preflight(needing(200 * kMiB));
    out << limits.cgroup_max_bytes.value_or(0) << ' ' << limits.cgroup_path << ' ' << small.can_proceed << ' '
        << big.can_proceed << ' ' << static_cast<int>(big.binding) << ' ' << limits.cgroup_usage_bytes.value_or(0)
        << ' ' << memdx::share_of_available_memory(1.0);
    std::string text = out.str();
    if (::write(report[1], text.data(), text.size()) < 0) ::_exit(3);
    ::_exit(0);
  }
  ::close(report[1]);
  std::string text;
  char buffer[512];
  ssize_t n = 0;
  while ((n = ::read(report[0], buffer, sizeof(buffer))) > 0) text.append(buffer, static_cast<size_t>(n));
  ::close(report[0]);
  int status = 0;
  EXPECT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  SeenInCgroup seen;
  std::istringstream in(text);
  in >> seen.max >> seen.path >> seen.small_fits >> seen.big_fits >> seen.binding >> seen.usage >> seen.share;
  return seen;
}

std::vector<std::string> directories_of(const memdx_test::TestCgroup& cgroup, const std::string& below = "") {
  std::vector<std::string> directories;
  for (const std::string& dir : {cgroup.v1_dir(), cgroup.v2_dir()}) {
    if (!dir.empty()) directories.push_back(dir + below);
  }
  return directories;
}

TEST(ReadMemoryLimits, SeesTheLimitOfItsOwnCgroup) {
  memdx_test::TestCgroup cgroup(96 * kMiB);
  if (!cgroup.limited()) GTEST_SKIP() << "no memory cgroup this test may create and limit (needs root)";
  SeenInCgroup seen = seen_from(directories_of(cgroup));
  EXPECT_EQ(seen.max, 96 * kMiB);
  std::string dir = cgroup.v1_dir().empty() ? cgroup.v2_dir() : cgroup.v1_dir();
  EXPECT_EQ(dir.substr(dir.size() - seen.path.size()), seen.path);
  EXPECT_EQ(seen.small_fits, 1);
  EXPECT_EQ(seen.big_fits, 0);
  EXPECT_EQ(seen.binding, static_cast<int>(PreflightBinding::kCgroupMax));
  EXPECT_LT(seen.usage, 96 * kMiB);
}

// A process in an unlimited cgroup below a limited one (a service in a slice): the parent's limit
// binds, and the guidance names the parent.
TEST(ReadMemoryLimits, SeesTheLimitOfAParentCgroup) {
  memdx_test::TestCgroup parent(96 * kMiB);
  if (!parent.limited()) GTEST_SKIP() << "no memory cgroup this test may create and limit (needs root)";
  std::vector<std::string> children = directories_of(parent, "/service");
  for (const std::string& dir : children) ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0) << dir;
  SeenInCgroup seen = seen_from(children);
  for (const std::string& dir : children) ::rmdir(dir.c_str());  // the child has exited: empty
  EXPECT_EQ(seen.max, 96 * kMiB);
  std::string parent_dir = parent.v1_dir().empty() ? parent.v2_dir() : parent.v1_dir();
  ASSERT_FALSE(seen.path.empty());
  EXPECT_EQ(parent_dir.substr(parent_dir.size() - seen.path.size()), seen.path) << "the parent binds: " << seen.path;
  EXPECT_EQ(seen.small_fits, 1);
  EXPECT_EQ(seen.big_fits, 0);
  EXPECT_EQ(seen.binding, static_cast<int>(PreflightBinding::kCgroupMax));
  EXPECT_GT(seen.share, 0u);
  EXPECT_LE(seen.share, 96 * kMiB);  // a budget sized from the room: the parent's limit bounds it too
}

}  // namespace
