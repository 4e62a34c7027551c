// model::to_json: the memdx.inspect/1 document.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "model/json_text.h"
#include "model/snapshot.h"
#include "model/verdict.h"
#include "sample_reports.h"

namespace memdx::model {
namespace {

using memdx::testing::kGiB;
using memdx::testing::kKiB;
using memdx::testing::kMiB;
using nlohmann::json;

TEST(ReportJson, SchemaAndProcessIdentity) {
  json doc = to_json(memdx::testing::single_process_report());
  EXPECT_EQ(doc["schema"], "memdx.inspect/1");
  EXPECT_EQ(doc["tree"], false);
  ASSERT_EQ(doc["processes"].size(), 1u);
  const json& p = doc["processes"][0];
  EXPECT_EQ(p["pid"], 4242);
  EXPECT_EQ(p["ppid"], 1);
  EXPECT_EQ(p["comm"], "app");
  EXPECT_EQ(p["command"], "/usr/bin/app --port 8080");
  EXPECT_EQ(p["argv"], json::array({"/usr/bin/app", "--port", "8080"}));
  EXPECT_EQ(p["state"], "S");
  EXPECT_EQ(p["uid"], 1000);
  EXPECT_EQ(p["kernel_thread"], false);
  EXPECT_EQ(p["threads"], 4);
  EXPECT_EQ(p["regions_measured"], true);
  EXPECT_EQ(p["unreadable"], json::array());
}

TEST(ReportJson, MemoryInBytes) {
  json doc = to_json(memdx::testing::single_process_report());
  const json& m = doc["processes"][0]["memory"];
  EXPECT_EQ(m["rss_bytes"], 64 * kMiB);
  EXPECT_EQ(m["rss_anon_bytes"], 40 * kMiB);
  EXPECT_EQ(m["rss_file_bytes"], 20 * kMiB);
  EXPECT_EQ(m["rss_shmem_bytes"], 4 * kMiB);
  EXPECT_EQ(m["pss_bytes"], 48 * kMiB);
  EXPECT_EQ(m["uss_bytes"], 24 * kMiB);
  EXPECT_EQ(m["swap_bytes"], 2 * kMiB);
  EXPECT_EQ(m["swap_pss_bytes"], 1 * kMiB);
  EXPECT_EQ(m["vsz_bytes"], 8 * kGiB);
  EXPECT_EQ(m["peak_rss_bytes"], 80 * kMiB);
  EXPECT_EQ(m["locked_bytes"], 0);
  EXPECT_TRUE(m["rss_bytes"].is_number_unsigned());
}

TEST(ReportJson, UnmeasuredValuesAreNullNotZero) {
  InspectReport report = memdx::testing::single_process_report();
  ProcessSnapshot& p = report.processes[0];
  p.memory.pss_bytes.reset();
  p.memory.uss_bytes.reset();
  p.memory.swap_pss_bytes.reset();
  p.fds.reset();
  p.unreadable = {"smaps_rollup", "smaps", "fd"};
  report.system.mem_available_bytes.reset();
  report.system.cgroup.reset();
  report.system.psi.reset();
  json doc = to_json(report);
  const json& m = doc["processes"][0]["memory"];
  EXPECT_TRUE(m["pss_bytes"].is_null());
  EXPECT_TRUE(m["uss_bytes"].is_null());
  EXPECT_TRUE(m["swap_pss_bytes"].is_null());
  EXPECT_TRUE(doc["processes"][0]["fds"].is_null());
  EXPECT_EQ(doc["processes"][0]["unreadable"], json::array({"smaps_rollup", "smaps", "fd"}));
  EXPECT_TRUE(doc["system"]["mem_available_bytes"].is_null());
  EXPECT_TRUE(doc["system"]["cgroup"].is_null());
  EXPECT_TRUE(doc["system"]["psi"]["system"].is_null());
  EXPECT_TRUE(doc["system"]["psi"]["cgroup"].is_null());
  EXPECT_EQ(doc["totals"]["complete"], false);  // a process's PSS is missing
}

TEST(ReportJson, RegionsUseCategoryNames) {
  json doc = to_json(memdx::testing::single_process_report());
  const json& regions = doc["processes"][0]["regions"];
  ASSERT_EQ(regions.size(), 4u);
  EXPECT_EQ(regions[0]["category"], "malloc_heap");
  EXPECT_EQ(regions[1]["category"], "anon_mmap");
  EXPECT_EQ(regions[1]["count"], 3);
  EXPECT_EQ(regions[1]["vsz_bytes"], 96 * kMiB);
  EXPECT_EQ(regions[1]["rss_bytes"], 38 * kMiB);
  EXPECT_EQ(regions[1]["pss_bytes"], 38 * kMiB);
  EXPECT_EQ(regions[1]["swap_bytes"], 2 * kMiB);
  EXPECT_EQ(regions[2]["category"], "gpu_driver");
  EXPECT_EQ(regions[3]["category"], "reserved");

  const json& top = doc["processes"][0]["top_regions"];
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0]["address"], "7f3a00000000-7f3a02000000");
  EXPECT_EQ(top[0]["perms"], "rw-p");
  EXPECT_EQ(top[0]["category"], "anon_mmap");
  EXPECT_EQ(top[0]["label"], "[anon]");
  EXPECT_EQ(top[0]["rss_bytes"], 30 * kMiB);

  const json& modules = doc["processes"][0]["modules"];
  ASSERT_EQ(modules.size(), 1u);
  EXPECT_EQ(modules[0]["path"], "/usr/lib/x86_64-linux-gnu/libc.so.6");
  EXPECT_EQ(modules[0]["code_rss_bytes"], 1200 * kKiB);
  EXPECT_EQ(modules[0]["data_rss_bytes"], 312 * kKiB);
}

TEST(ReportJson, EveryCategoryHasItsContractName) {
  std::vector<std::string> names;
  for (RegionCategory category : kAllRegionCategories) names.push_back(category_name(category));
  EXPECT_EQ(names, (std::vector<std::string>{"malloc_heap", "anon_mmap", "stack", "file", "shmem", "memfd", "tmpfs",
                                             "gpu_driver", "reserved", "special"}));
}

TEST(ReportJson, FdsSystemAndNotes) {
  json doc = to_json(memdx::testing::single_process_report());
  const json& fds = doc["processes"][0]["fds"];
  EXPECT_EQ(fds["total"], 6);
  EXPECT_EQ(fds["by_type"]["regular"], 3);
  EXPECT_EQ(fds["by_type"]["pipe"], 2);

  const json& s = doc["system"];
  EXPECT_EQ(s["mem_total_bytes"], 16 * kGiB);
  EXPECT_EQ(s["mem_available_bytes"], 8 * kGiB);
  EXPECT_EQ(s["cgroup"]["version"], 2);
  EXPECT_EQ(s["cgroup"]["path"], "/user.slice/app.service");
  EXPECT_EQ(s["cgroup"]["memory_current_bytes"], 500 * kMiB);
  EXPECT_EQ(s["cgroup"]["memory_max_bytes"], 1 * kGiB);
  EXPECT_TRUE(s["cgroup"]["memory_high_bytes"].is_null());
  EXPECT_EQ(s["cgroup"]["oom_kill_events"], 1);
  EXPECT_DOUBLE_EQ(s["psi"]["system"]["some_avg10"].get<double>(), 0.12);
  EXPECT_TRUE(s["psi"]["system"]["full_avg10"].is_null());

  ASSERT_EQ(doc["notes"].size(), 1u);
  EXPECT_EQ(doc["notes"][0]["kind"], "reservation_only");
  EXPECT_EQ(doc["notes"][0]["pid"], 4242);
}

TEST(ReportJson, TreeTotalsAddPssNotRss) {
  json doc = to_json(memdx::testing::tree_report());
  EXPECT_EQ(doc["tree"], true);
  ASSERT_EQ(doc["processes"].size(), 4u);
  EXPECT_EQ(doc["processes"][0]["children"], json::array({101, 103}));
  const json& totals = doc["totals"];
  EXPECT_EQ(totals["pss_bytes"], 60 * kMiB);
  EXPECT_EQ(totals["uss_bytes"], 30 * kMiB);
  EXPECT_EQ(totals["threads"], 16);
  EXPECT_EQ(totals["fds"], 18);  // 103's fds were not readable
  EXPECT_EQ(totals["complete"], true);
  EXPECT_FALSE(totals.contains("rss_bytes"));
  EXPECT_FALSE(totals.contains("vsz_bytes"));
}

TEST(ReportJson, TreeTotalsSwapPrefersSwapPss) {
  InspectReport report = memdx::testing::tree_report();
  report.processes[0].memory.swap_bytes = 8 * kMiB;
  report.processes[0].memory.swap_pss_bytes = 2 * kMiB;
  report.processes[1].memory.swap_bytes = 4 * kMiB;  // no SwapPss: its swap counts whole
  EXPECT_EQ(to_json(report)["totals"]["swap_bytes"], 6 * kMiB);
}

TEST(ReportJson, KernelThreadsAndZombiesDoNotMakeTotalsIncomplete) {
  InspectReport report = memdx::testing::tree_report();
  report.processes[2].memory.pss_bytes.reset();
  report.processes[2].is_zombie = true;
  report.processes[3].memory.pss_bytes.reset();
  report.processes[3].is_kernel_thread = true;
  report.processes[3].command.clear();
  json doc = to_json(report);
  EXPECT_EQ(doc["totals"]["complete"], true);
  EXPECT_EQ(doc["totals"]["pss_bytes"], 50 * kMiB);
  EXPECT_EQ(doc["processes"][3]["command"], "[app]");
  EXPECT_EQ(doc["processes"][3]["kernel_thread"], true);
}

TEST(ReportJson, ExitedDuringRead) {
  InspectReport report = memdx::testing::tree_report();
  report.exited_during_read = {105, 106};
  EXPECT_EQ(to_json(report)["exited_during_read"], json::array({105, 106}));
}

}  // namespace
}  // namespace memdx::model

namespace memdx {
namespace {

// A module path is bytes: one that is not UTF-8 (or a damaged trace's) still prints, as U+FFFD.
TEST(ReportJson, BytesThatAreNotUtf8PrintAsReplacementCharacters) {
  model::Verdict verdict;
  model::HeapSummary heap;
  model::HeapSiteSummary site;
  site.function = "libpl\xca\xfeugin.so+0x1234";
  heap.sites.push_back(site);
  verdict.heap.push_back(heap);
  std::string text;
  ASSERT_NO_THROW(text = model::json_text(model::to_json(verdict)));
  nlohmann::json parsed = nlohmann::json::parse(text);
  EXPECT_EQ(parsed["heap"][0]["sites"][0]["function"], "libpl\uFFFD\uFFFDugin.so+0x1234");
}

}  // namespace
}  // namespace memdx
