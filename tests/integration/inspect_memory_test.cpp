// memdx inspect on real processes whose memory we built: a reservation, a shared mapping
// across a tree, a known set of fds.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "integration/harness.h"

namespace memdx::test {
namespace {

using nlohmann::json;
constexpr double kMiB = 1024.0 * 1024.0;
constexpr uint64_t kGiB = uint64_t{1} << 30;

json inspect_json(const std::vector<std::string>& args) {
  std::vector<std::string> full = {"inspect", "--json"};
  full.insert(full.end(), args.begin(), args.end());
  CommandResult r = run_memdx(full);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return json::parse(r.out);
}

const json* find_region(const json& process, const std::string& category) {
  for (const json& region : process["regions"]) {
    if (region["category"] == category) return &region;
  }
  return nullptr;
}

bool has_note(const json& report, const std::string& kind, pid_t pid) {
  for (const json& note : report["notes"]) {
    if (note["kind"] == kind && note["pid"] == pid) return true;
  }
  return false;
}

TEST(InspectReservation, ReservedAddressSpaceIsNotResidentAndIsExplained) {
  Helper helper("reserve_touch");
  json report = inspect_json({std::to_string(helper.pid())});
  ASSERT_EQ(report["schema"], "memdx.inspect/1");
  ASSERT_EQ(report["processes"].size(), 1u);
  const json& p = report["processes"][0];
  EXPECT_EQ(p["pid"], helper.pid());
  const json& m = p["memory"];
  EXPECT_GE(m["vsz_bytes"].get<uint64_t>(), 8 * kGiB);
  double anon_mib = m["rss_anon_bytes"].get<double>() / kMiB;
  EXPECT_NEAR(anon_mib, 64.0, 64.0 * 0.05);
  EXPECT_TRUE(has_note(report, "reservation_only", helper.pid())) << report["notes"].dump(2);

  // The 8 GiB split: 64 MiB resident anonymous memory, the rest a reservation.
  const json* reserved = find_region(p, "reserved");
  ASSERT_NE(reserved, nullptr);
  EXPECT_GE((*reserved)["vsz_bytes"].get<uint64_t>(), 8 * kGiB - (64u << 20));
  EXPECT_EQ((*reserved)["rss_bytes"].get<uint64_t>(), 0u);
  const json* anon = find_region(p, "anon_mmap");
  ASSERT_NE(anon, nullptr);
  EXPECT_NEAR((*anon)["rss_bytes"].get<double>() / kMiB, 64.0, 3.2);
}

TEST(InspectReservation, TextOutputExplainsTheReservation) {
  Helper helper("reserve_touch");
  CommandResult r = run_memdx({"inspect", std::to_string(helper.pid())});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("[reservation_only]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("reserved only"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("harmless"), std::string::npos) << r.out;
  EXPECT_TRUE(r.err.empty()) << r.err;
}

TEST(InspectTree, SharedMappingIsCountedOnceByPss) {
  Helper helper("shared_tree");
  json report = inspect_json({"--tree", std::to_string(helper.pid())});
  const json& processes = report["processes"];
  ASSERT_EQ(processes.size(), 4u) << "the parent and its 3 children";
  EXPECT_EQ(processes[0]["pid"], helper.pid());
  EXPECT_EQ(processes[0]["children"].size(), 3u);

  uint64_t pss_sum = 0;
  for (const json& p : processes) {
    const json& m = p["memory"];
    // Every process maps and has touched the whole 96 MiB.
    EXPECT_GE(m["rss_bytes"].get<double>() / kMiB, 96.0) << p["pid"];
    EXPECT_NEAR(m["rss_shmem_bytes"].get<double>() / kMiB, 96.0, 1.0) << p["pid"];
    const json* shmem = find_region(p, "shmem");
    ASSERT_NE(shmem, nullptr) << p["pid"];
    EXPECT_NEAR((*shmem)["rss_bytes"].get<double>() / kMiB, 96.0, 1.0);
    EXPECT_NEAR((*shmem)["pss_bytes"].get<double>() / kMiB, 24.0, 1.0);
    pss_sum += m["pss_bytes"].get<uint64_t>();
  }
  // 96 MiB once plus four small private footprints: never 4 x 96 MiB.
  double total_mib = report["totals"]["pss_bytes"].get<double>() / kMiB;
  EXPECT_EQ(report["totals"]["pss_bytes"].get<uint64_t>(), pss_sum);
  EXPECT_GE(total_mib, 96.0);
  EXPECT_LE(total_mib, 96.0 + 4 * 4.0);
  EXPECT_TRUE(has_note(report, "shared_heavy", helper.pid())) << report["notes"].dump(2);
}

TEST(InspectTree, TextShowsOneRowPerProcessAndAPssTotal) {
  Helper helper("shared_tree");
  CommandResult r = run_memdx({"inspect", "--tree", std::to_string(helper.pid())});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("4 processes"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("total (by PSS)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("RSS and VSZ are not summed"), std::string::npos) << r.out;
}

TEST(InspectFds, CountsByTypeAreExact) {
  Helper helper("fd_zoo");
  json report = inspect_json({std::to_string(helper.pid())});
  const json& fds = report["processes"][0]["fds"];
  ASSERT_FALSE(fds.is_null());
  EXPECT_EQ(fds["total"], 10);
  json expected = {{"socket", 5}, {"pipe", 3}, {"memfd", 2}};
  EXPECT_EQ(fds["by_type"], expected) << fds.dump();
}

TEST(InspectFds, SelfInspectionCountsThreadsAndSeesSystem) {
  Helper helper("reserve_touch");
  json report = inspect_json({std::to_string(helper.pid())});
  EXPECT_EQ(report["processes"][0]["threads"], 1);
  const json& system = report["system"];
  EXPECT_GT(system["mem_total_bytes"].get<uint64_t>(), 0u);
  EXPECT_GT(system["mem_available_bytes"].get<uint64_t>(), 0u);
  EXPECT_LE(system["mem_available_bytes"].get<uint64_t>(), system["mem_total_bytes"].get<uint64_t>());
}

}  // namespace
}  // namespace memdx::test
