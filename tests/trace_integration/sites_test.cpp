// The site analysis on programs with known memory behaviour (programs/sites.cpp), run by
// `memdx run` as a user would: which call sites hold growing memory, what leaked at exit, what
// was temporary, and the findings that name those sites.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <set>

#include "trace_integration/trace_support.h"

namespace memdx::test {
namespace {

class SitesTest : public TraceTest {
 protected:
  // memdx run --json on the sites program in `mode`; the verdict.
  json run_sites(const std::string& mode, const std::string& tracee = "sites") {
    std::string json_path = path(mode + ".json");
    recording_ = path(mode + ".memdx");
    Finished run = run_for({memdx_path(), "run", "--json", json_path, "--out", recording_, "--",
                            tracee_path(tracee), mode, "7"},
                           120);
    EXPECT_FALSE(run.timed_out);
    EXPECT_EQ(run.exit_code, 0) << run.err;
    std::ifstream in(json_path);
    if (!in) {
      ADD_FAILURE() << "no verdict JSON: " << run.err;
      return json::object();
    }
    return json::parse(in);
  }
};

std::vector<json> findings_of(const json& verdict, const std::string& kind) {
  std::vector<json> found;
  for (const json& f : verdict["findings"]) {
    if (f["kind"] == kind) found.push_back(f);
  }
  return found;
}

bool starts_with(const std::string& text, const std::string& prefix) { return text.rfind(prefix, 0) == 0; }

const json* site_named(const json& sites, const std::string& function) {
  for (const json& site : sites) {
    if (starts_with(site["function"].get<std::string>(), function)) return &site;
  }
  return nullptr;
}

TEST_F(SitesTest, UnboundedContainerFreedAtExitIsTheTopGrowthSite) {
  json verdict = run_sites("growth");
  std::vector<json> growth = findings_of(verdict, "heap_growth");
  ASSERT_EQ(growth.size(), 1u) << verdict["findings"].dump(2);
  EXPECT_EQ(growth[0]["severity"], "leak");
  const json& sites = growth[0]["sites"];
  ASSERT_FALSE(sites.empty());
  const json& top = sites[0];
  EXPECT_TRUE(starts_with(top["function"].get<std::string>(), "(anonymous namespace)::remember_request")) << top.dump(2);
  EXPECT_EQ(top["file"], tracee_source("sites.cpp"));
  EXPECT_EQ(std::set<int>{top["line"].get<int>()}, marked_lines(tracee_source("sites.cpp"), "remember_request"));
  // 16 KiB every ~10 ms: about 1.5 MiB/s (sleeps overshoot; never faster than planned).
  double rate = top["growth_bytes_per_s"].get<double>();
  EXPECT_GT(rate, 0.8e6);
  EXPECT_LT(rate, 1.7e6);
  // Freed at exit: a classic leak checker reports nothing here. What it held at the peak is what
  // the finding says.
  EXPECT_EQ(top["live_bytes"], 0);
  EXPECT_GT(top["live_at_peak_bytes"].get<uint64_t>(), 1u << 20) << top.dump(2);
  // The bounded cache and the temporaries are not growth sites.
  EXPECT_EQ(site_named(sites, "(anonymous namespace)::cache_response"), nullptr) << sites.dump(2);
  EXPECT_EQ(site_named(sites, "(anonymous namespace)::format_line"), nullptr) << sites.dump(2);
  // The finding's evidence names the site.
  EXPECT_NE(growth[0]["evidence"].get<std::string>().find("remember_request"), std::string::npos);

  ASSERT_EQ(verdict["heap"].size(), 1u);
  const json& heap_sites = verdict["heap"][0]["sites"];
  const json* cache = site_named(heap_sites, "(anonymous namespace)::cache_response");
  ASSERT_NE(cache, nullptr);
  EXPECT_FALSE((*cache)["growing"].get<bool>()) << cache->dump(2);
  // 64 entries of 16 KiB (plus the map's nodes) live at the peak, not hundreds.
  EXPECT_GE((*cache)["live_at_peak_bytes"].get<uint64_t>(), 64u * 16384);
  EXPECT_LT((*cache)["live_at_peak_bytes"].get<uint64_t>(), 80u * 16384);
  const json* history = site_named(heap_sites, "(anonymous namespace)::remember_request");
  ASSERT_NE(history, nullptr);
  EXPECT_TRUE((*history)["growing"].get<bool>());
  EXPECT_EQ((*history)["final_live_bytes"], 0);
  EXPECT_EQ((*history)["live_at_peak_bytes"].get<uint64_t>(), (*history)["allocated_bytes"].get<uint64_t>());
}

TEST_F(SitesTest, ClassicLeakIsLeakedAtExitAndTemporariesAreCounted) {
  json verdict = run_sites("growth");
  ASSERT_EQ(verdict["heap"].size(), 1u);
  const json& heap = verdict["heap"][0];
  const json* lost = site_named(heap["sites"], "(anonymous namespace)::lose_config");
  ASSERT_NE(lost, nullptr) << heap["sites"].dump(2);
  EXPECT_EQ((*lost)["final_live_blocks"], 100);
  EXPECT_EQ((*lost)["final_live_bytes"], 100000);
  EXPECT_EQ((*lost)["temporary_allocations"], 0);
  // Every format_line block is freed right after it is allocated, nothing else between.
  const json* scratch = site_named(heap["sites"], "(anonymous namespace)::format_line");
  ASSERT_NE(scratch, nullptr);
  EXPECT_GT((*scratch)["allocations"].get<uint64_t>(), 1000u);
  EXPECT_EQ((*scratch)["temporary_allocations"], (*scratch)["allocations"]);
  EXPECT_EQ((*scratch)["final_live_bytes"], 0);

  // The text report lists it under leaks at exit, with its stack below.
  Finished text = run_for({memdx_path(), "report", recording_, "--top", "5"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  size_t leaked = text.out.find("still live at the end (leaked at exit)");
  ASSERT_NE(leaked, std::string::npos) << text.out;
  size_t named = text.out.find("lose_config", leaked);
  ASSERT_NE(named, std::string::npos) << text.out;
  EXPECT_NE(text.out.find("main (sites.cpp:", named), std::string::npos) << text.out;
  size_t growth = text.out.find("heap growth: live bytes rising");
  ASSERT_NE(growth, std::string::npos) << text.out;
  EXPECT_LT(text.out.find("remember_request", growth), leaked) << text.out;
}

TEST_F(SitesTest, MmapArenaIsAnAnonGrowthSite) {
  json verdict = run_sites("mmap");
  std::vector<json> anon = findings_of(verdict, "anon_growth");
  ASSERT_EQ(anon.size(), 1u) << verdict["findings"].dump(2);
  EXPECT_EQ(anon[0]["severity"], "leak");
  ASSERT_FALSE(anon[0]["sites"].empty());
  const json& top = anon[0]["sites"][0];
  EXPECT_TRUE(starts_with(top["function"].get<std::string>(), "(anonymous namespace)::map_chunk")) << top.dump(2);
  EXPECT_EQ(std::set<int>{top["line"].get<int>()}, marked_lines(tracee_source("sites.cpp"), "map_chunk"));
  // Never unmapped: all of it is live at the end.
  EXPECT_GT(top["live_bytes"].get<uint64_t>(), 100u * (256 << 10));
  EXPECT_TRUE(findings_of(verdict, "heap_growth").empty());
}

// Whether its live bytes count as growth or as steps that level off, the vector's resident
// pages rise steadily: the anon finding names it.
TEST_F(SitesTest, DoublingVectorIsNamedByTheAnonFinding) {
  json verdict = run_sites("vector");
  std::vector<json> leaks;
  for (const char* kind : {"heap_growth", "anon_growth"}) {
    for (const json& f : findings_of(verdict, kind)) leaks.push_back(f);
  }
  ASSERT_FALSE(leaks.empty()) << verdict["findings"].dump(2);
  for (const json& leak : leaks) {
    ASSERT_FALSE(leak["sites"].empty()) << leak.dump(2);
    EXPECT_TRUE(starts_with(leak["sites"][0]["function"].get<std::string>(), "(anonymous namespace)::log_events"))
        << leak["sites"].dump(2);
    EXPECT_EQ(std::set<int>{leak["sites"][0]["line"].get<int>()}, marked_lines(tracee_source("sites.cpp"), "log_events"));
  }
}

TEST_F(SitesTest, InlinedSiteWithoutFramePointersKeepsItsFileAndLine) {
  json verdict = run_sites("inlined", "sites_inlined");
  std::vector<json> growth = findings_of(verdict, "heap_growth");
  ASSERT_EQ(growth.size(), 1u) << verdict["findings"].dump(2);
  ASSERT_FALSE(growth[0]["sites"].empty());
  const json& top = growth[0]["sites"][0];
  EXPECT_TRUE(starts_with(top["function"].get<std::string>(), "(anonymous namespace)::add_posting")) << top.dump(2);
  EXPECT_EQ(top["file"], tracee_source("sites.cpp"));
  EXPECT_EQ(std::set<int>{top["line"].get<int>()}, marked_lines(tracee_source("sites.cpp"), "add_posting"));
  // The caller it was inlined into is the next frame of the stack.
  ASSERT_GE(top["stack"].size(), 2u);
  EXPECT_NE(top["stack"][1].get<std::string>().find("index_document"), std::string::npos) << top["stack"].dump(2);
}

}  // namespace
}  // namespace memdx::test
