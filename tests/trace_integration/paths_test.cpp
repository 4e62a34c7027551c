// The paths of a site and the suppression files, on programs/paths.cpp: make_buffer() reached by
// keep_forever() (10 x 1,000 B kept), burst() (50 x 4,096 B at once, the peak) and churn()
// (5,000 x 64 B temporaries); library_cache() keeps 3,000 B and lose_this() 700 B.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "trace_integration/trace_support.h"

namespace memdx::test {
namespace {

class PathsTest : public TraceTest {
 protected:
  void SetUp() override {
    TraceTest::SetUp();
    Finished run = trace({tracee_path("paths")});
    ASSERT_EQ(run.exit_code, 0) << run.err;
    ASSERT_EQ(run.out, "paths\n");
  }

  std::string write_file(const std::string& name, const std::string& text) {
    std::ofstream(path(name)) << text;
    return path(name);
  }

  // The text of memdx report on the recording, with `options`.
  std::string report_text(const std::vector<std::string>& options) {
    std::vector<std::string> argv = {memdx_path(), "report", recording()};
    argv.insert(argv.end(), options.begin(), options.end());
    CommandResult text = run_command(argv);
    EXPECT_EQ(text.exit_code, 0) << text.err;
    return text.out;
  }
};

const json* site_of(const json& verdict, const std::string& function) {
  for (const json& site : verdict["heap"][0]["sites"]) {
    if (site["function"] == function) return &site;
  }
  return nullptr;
}

// The path whose stack has `caller` right below the site's own frame.
const json* path_through(const json& site, const std::string& caller) {
  for (const json& path : site["paths"]) {
    if (path["stack"].size() > 1 && path["stack"][1].get<std::string>().rfind(caller + " ", 0) == 0) return &path;
  }
  return nullptr;
}

// The text between a section's title and the next section's.
std::string section(const std::string& text, const std::string& title) {
  size_t from = text.find(title);
  if (from == std::string::npos) return "";
  size_t to = text.find("\n   heap ", from + title.size());
  return text.substr(from, to == std::string::npos ? std::string::npos : to - from);
}

TEST_F(PathsTest, EachPathHasItsOwnFiguresAndEachRankingShowsThePathThatHoldsIt) {
  json verdict = report();
  const json* site = site_of(verdict, "make_buffer");
  ASSERT_NE(site, nullptr) << verdict["heap"].dump(1);
  EXPECT_EQ((*site)["path_count"], 3);
  EXPECT_EQ((*site)["allocations"], 5060);
  EXPECT_EQ((*site)["final_live_bytes"], 10000);
  const json* kept = path_through(*site, "keep_forever");
  const json* burst = path_through(*site, "burst");
  const json* churn = path_through(*site, "churn");
  ASSERT_TRUE(kept && burst && churn) << site->dump(1);
  EXPECT_EQ((*kept)["allocations"], 10);
  EXPECT_EQ((*kept)["final_live_bytes"], 10000);
  EXPECT_EQ((*burst)["allocations"], 50);
  EXPECT_EQ((*burst)["peak_live_bytes"], 50 * 4096);
  EXPECT_EQ((*burst)["live_at_peak_bytes"], 50 * 4096);
  EXPECT_EQ((*burst)["final_live_bytes"], 0);
  EXPECT_EQ((*churn)["temporary_allocations"], 5000);
  EXPECT_EQ((*churn)["allocated_bytes"], 5000 * 64);
  // The site's peak is what its paths held at once (keep_forever's blocks and the burst), not
  // each path's own peak added up (10,000 + 204,800 + 64).
  EXPECT_EQ((*site)["peak_live_bytes"], 10000 + 50 * 4096);
  EXPECT_TRUE((*site)["peak_live_bytes_exact"]);
  const json* single = site_of(verdict, "lose_this");
  ASSERT_NE(single, nullptr);
  EXPECT_EQ((*single)["peak_live_bytes"], 700);
  EXPECT_TRUE((*single)["peak_live_bytes_exact"]);

  std::string text = report_text({});
  std::string peak = section(text, "heap at the peak");
  std::string leaked = section(text, "heap still live at the end");
  std::string temporary = section(text, "heap temporary allocations");
  // Each ranking's stack is the path that holds what it ranks.
  EXPECT_NE(peak.find("burst (paths.cpp:"), std::string::npos) << text;
  EXPECT_EQ(peak.find("keep_forever"), std::string::npos) << text;
  EXPECT_NE(leaked.find("keep_forever (paths.cpp:"), std::string::npos) << text;
  EXPECT_EQ(leaked.find("burst"), std::string::npos) << text;
  EXPECT_NE(temporary.find("churn (paths.cpp:"), std::string::npos) << text;
  EXPECT_NE(text.find("one of 3 paths to it: --paths shows each"), std::string::npos) << text;
}

TEST_F(PathsTest, PathsShowsEveryPathWithItsFigures) {
  json verdict = report({"--paths"});
  const json* site = site_of(verdict, "make_buffer");
  ASSERT_NE(site, nullptr);
  EXPECT_EQ((*site)["paths"].size(), 3u);
  std::string leaked = section(report_text({"--paths"}), "heap still live at the end");
  size_t listed = leaked.find("3 paths to it:");
  ASSERT_NE(listed, std::string::npos) << leaked;
  // Most live at the end first: keep_forever's 10 blocks, then the two that kept nothing.
  size_t kept = leaked.find("10 allocations, 9.77 KiB allocated; 9.77 KiB live at the end in 10 blocks", listed);
  size_t churn = leaked.find("5,000 allocations, 312 KiB allocated; 0 B live at the end", listed);
  size_t burst = leaked.find("50 allocations, 200 KiB allocated; 0 B live at the end", listed);
  ASSERT_NE(kept, std::string::npos) << leaked;
  ASSERT_NE(churn, std::string::npos) << leaked;
  ASSERT_NE(burst, std::string::npos) << leaked;
  EXPECT_LT(kept, std::min(churn, burst));
  EXPECT_NE(leaked.find("keep_forever (paths.cpp:", kept), std::string::npos);
}

TEST_F(PathsTest, SuppressedStacksAreHiddenFromTheSitesAndCounted) {
  std::string valgrind = write_file("library.supp",
                                    "# from valgrind --gen-suppressions=all\n"
                                    "{\n"
                                    "   cache-of-the-library\n"
                                    "   Memcheck:Leak\n"
                                    "   match-leak-kinds: reachable\n"
                                    "   fun:malloc\n"
                                    "   fun:library_cache\n"
                                    "   ...\n"
                                    "}\n");
  std::string lsan = write_file("lsan.supp", "leak:lose_th\n");
  json verdict = report({"--suppress", valgrind, "--suppress", lsan});
  EXPECT_EQ(site_of(verdict, "library_cache"), nullptr) << verdict["heap"].dump(1);
  EXPECT_EQ(site_of(verdict, "lose_this"), nullptr);
  ASSERT_NE(site_of(verdict, "make_buffer"), nullptr);
  const json& hidden = verdict["heap"][0]["suppressed"];
  EXPECT_EQ(hidden["stacks"], 2);
  EXPECT_EQ(hidden["allocations"], 2);
  EXPECT_EQ(hidden["final_live_bytes"], 3700);
  // The process's own figures stay what was traced.
  EXPECT_EQ(verdict["heap"][0]["final_live_bytes"], 13700);

  std::string text = report_text({"--suppress", valgrind, "--suppress", lsan});
  EXPECT_EQ(text.find("library_cache"), std::string::npos) << text;
  EXPECT_EQ(text.find("lose_this"), std::string::npos) << text;
  EXPECT_NE(text.find("hidden by --suppress " + valgrind + ", " + lsan + ": 2 stacks, 2 allocations"),
            std::string::npos)
      << text;

  // A frame further down hides every path through it, and only those.
  json by_caller = report({"--suppress", write_file("burst.supp", "fun:burst\n")});
  const json* site = site_of(by_caller, "make_buffer");
  ASSERT_NE(site, nullptr);
  EXPECT_EQ((*site)["path_count"], 2);
  EXPECT_EQ((*site)["allocations"], 5010);
  EXPECT_EQ(by_caller["heap"][0]["suppressed"]["allocations"], 50);
  // Its peak without the burst: keep_forever's blocks and one of churn's at a time.
  EXPECT_EQ((*site)["peak_live_bytes"], 10000 + 64);
  EXPECT_TRUE((*site)["peak_live_bytes_exact"]);
}

TEST_F(PathsTest, AWrongSuppressionFileIsOneLineAndNoRun) {
  std::string wrong = write_file("wrong.supp", "fun:ok\nCache::insert\n");
  CommandResult report = run_command({memdx_path(), "report", recording(), "--suppress", wrong});
  EXPECT_EQ(report.exit_code, 2);
  EXPECT_EQ(report.err, "memdx: " + wrong +
                            ":2: expected a valgrind block '{', or leak:, fun:, obj: or src: and a "
                            "pattern; found 'Cache::insert'\n");
  // memdx run reads the file before it starts the command: a typo costs no run.
  std::string marker = path("ran");
  CommandResult run = run_command(
      {memdx_path(), "run", "--quiet", "--suppress", wrong, "--out", path("r.memdx"), "--", "touch", marker});
  EXPECT_EQ(run.exit_code, 2) << run.err;
  EXPECT_FALSE(std::filesystem::exists(marker));
  EXPECT_FALSE(std::filesystem::exists(path("r.memdx")));
  CommandResult missing = run_command({memdx_path(), "report", recording(), "--suppress", path("none.supp")});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("none.supp: cannot read the suppression file: No such file or directory"),
            std::string::npos)
      << missing.err;
}

}  // namespace
}  // namespace memdx::test
