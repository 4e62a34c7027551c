// memdx inspect's error paths: every one ends with one clear stderr line and the documented
// exit code, never a crash or partial garbage.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "integration/harness.h"

namespace memdx::test {
namespace {

using nlohmann::json;

// A pid that certainly exists no more: a child we started and reaped.
pid_t reaped_pid() {
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  ::waitpid(pid, nullptr, 0);
  return pid;
}

void expect_one_line_error(const CommandResult& r, int exit_code, const std::string& fragment) {
  EXPECT_EQ(r.exit_code, exit_code) << r.err;
  EXPECT_EQ(line_count(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find(fragment), std::string::npos) << r.err;
  EXPECT_EQ(r.err.rfind("memdx: ", 0), 0u) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST(InspectErrors, MissingPidExitsOne) {
  pid_t pid = reaped_pid();
  expect_one_line_error(run_memdx({"inspect", std::to_string(pid)}), 1, "no process with pid");
}

TEST(InspectErrors, NegativePidIsAUsageError) {
  CommandResult r = run_memdx({"inspect", "-5"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(line_count(r.err), 1u) << r.err;
}

TEST(InspectErrors, NonNumericPidsAreUsageErrors) {
  for (const char* bad : {"12abc", "0", "99999999999", "+5", "3.5", "0x10", ""}) {
    CommandResult r = run_memdx({"inspect", bad});
    EXPECT_EQ(r.exit_code, 2) << "'" << bad << "': " << r.err;
    EXPECT_EQ(line_count(r.err), 1u) << r.err;
  }
}

TEST(InspectErrors, UsageErrorsExitTwo) {
  EXPECT_EQ(run_memdx({}).exit_code, 2);
  EXPECT_EQ(run_memdx({"inspect"}).exit_code, 2);
  EXPECT_EQ(run_memdx({"inspect", "--bogus", "1"}).exit_code, 2);
  EXPECT_EQ(run_memdx({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(run_memdx({"frobnicate", "--help"}).exit_code, 2);
  CommandResult help = run_memdx({"inspect", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--tree"), std::string::npos);
}

TEST(InspectErrors, UnknownNameExitsOne) {
  expect_one_line_error(run_memdx({"inspect", "no-such-process-name-memdx-test"}), 1, "no process matches");
}

// A token that only our helpers carry on their command line.
std::string unique_token() {
  std::random_device random;
  return "memdx-token-" + std::to_string(random()) + std::to_string(::getpid());
}

TEST(InspectNames, SeveralMatchesAreListedUnlessAll) {
  std::string token = unique_token();
  Helper first("short_lived", {"60000000", token});
  Helper second("short_lived", {"60000000", token});
  CommandResult r = run_memdx({"inspect", token});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("matches 2 processes"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(std::to_string(first.pid())), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(std::to_string(second.pid())), std::string::npos) << r.err;

  CommandResult all = run_memdx({"inspect", "--all", "--json", token});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  json report = json::parse(all.out);
  ASSERT_EQ(report["processes"].size(), 2u);
  EXPECT_EQ(report["processes"][0]["pid"], first.pid());
  EXPECT_EQ(report["processes"][1]["pid"], second.pid());
}

TEST(InspectNames, OneMatchByCommandLineOrExactComm) {
  std::string token = unique_token();
  Helper helper("short_lived", {"60000000", token});
  CommandResult r = run_memdx({"inspect", "--json", token});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["processes"][0]["pid"], helper.pid());

  // The comm of the helper is its file name, cut to 15 characters by the kernel.
  std::string comm = std::string("memdx_helper_short_lived").substr(0, 15);
  CommandResult by_comm = run_memdx({"inspect", "--all", "--json", comm});
  ASSERT_EQ(by_comm.exit_code, 0) << by_comm.err;
  json report = json::parse(by_comm.out);
  bool found = false;
  for (const json& p : report["processes"]) found = found || p["pid"] == helper.pid();
  EXPECT_TRUE(found);
}

TEST(InspectErrors, ZombieIsReportedNotCrashedOn) {
  Helper helper("zombie_parent");
  ASSERT_EQ(helper.preamble().size(), 1u);
  std::string zombie = helper.preamble()[0].substr(helper.preamble()[0].find(' ') + 1);
  CommandResult r = run_memdx({"inspect", "--json", zombie});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json p = json::parse(r.out)["processes"][0];
  EXPECT_EQ(p["state"], "Z");
  EXPECT_EQ(p["memory"]["rss_bytes"], 0);

  CommandResult tree = run_memdx({"inspect", "--tree", std::to_string(helper.pid())});
  ASSERT_EQ(tree.exit_code, 0) << tree.err;
  EXPECT_NE(tree.out.find("2 processes"), std::string::npos) << tree.out;
}

// Processes that exit at random moments while memdx reads them: each run either reports the
// live process whole, reports the zombie it became (exited, not yet reaped) as a zombie, or says
// in one line that it exited. Never a mix of the live and the dead process.
TEST(InspectErrors, ProcessExitingMidReadGivesWholeSnapshotOrOneLine) {
  std::mt19937 random(42);
  int whole = 0;
  int gone = 0;
  for (int i = 0; i < 40; ++i) {
    std::string delay_us = std::to_string(random() % 20000);
    Helper helper("short_lived", {delay_us});
    CommandResult r = run_memdx({"inspect", "--json", std::to_string(helper.pid())});
    helper.wait();
    if (r.exit_code == 0) {
      json report = json::parse(r.out);  // throws, failing the test, on partial output
      ASSERT_EQ(report["processes"].size(), 1u);
      const json& p = report["processes"][0];
      EXPECT_EQ(p["pid"], helper.pid());
      if (p["state"] == "Z") {
        EXPECT_EQ(p["memory"]["vsz_bytes"], 0);
        EXPECT_EQ(p["memory"]["rss_bytes"], 0);
        EXPECT_TRUE(p["regions"].empty());
      } else {
        EXPECT_GT(p["memory"]["vsz_bytes"].get<uint64_t>(), 4000u * 4096u);
        EXPECT_GT(p["memory"]["pss_bytes"].get<uint64_t>(), 0u);
        EXPECT_GE(p["regions"].size(), 3u);
      }
      ++whole;
    } else {
      EXPECT_EQ(r.exit_code, 1) << r.err;
      EXPECT_EQ(line_count(r.err), 1u) << r.err;
      EXPECT_TRUE(r.err.find("exited") != std::string::npos || r.err.find("no process") != std::string::npos) << r.err;
      EXPECT_TRUE(r.out.empty());
      ++gone;
    }
  }
  EXPECT_EQ(whole + gone, 40);
}

// Another user's process: what status shows is printed, the unreadable files are named, and
// the line says what grants access. Needs root to create the situation.
TEST(InspectPermissions, OtherUsersProcessGivesPartialDataAndExitZero) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run memdx as another user";
  Helper helper("reserve_touch");  // owned by root
  // The build tree may sit under a directory the other user cannot enter: use a copy.
  std::filesystem::path dir = std::filesystem::temp_directory_path() / ("memdx-perm-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::filesystem::path copy = dir / "memdx";
  std::filesystem::copy_file(memdx_path(), copy, std::filesystem::copy_options::overwrite_existing);
  ::chmod(dir.c_str(), 0755);
  ::chmod(copy.c_str(), 0755);
  const uid_t nobody = 65534;
  CommandResult r = run_command({copy.string(), "inspect", "--json", std::to_string(helper.pid())}, nobody);
  CommandResult text = run_command({copy.string(), "inspect", std::to_string(helper.pid())}, nobody);
  std::filesystem::remove_all(dir);

  ASSERT_EQ(r.exit_code, 0) << r.err;
  json p = json::parse(r.out)["processes"][0];
  std::vector<std::string> unreadable = p["unreadable"];
  EXPECT_NE(std::find(unreadable.begin(), unreadable.end(), "smaps_rollup"), unreadable.end()) << p["unreadable"];
  EXPECT_NE(std::find(unreadable.begin(), unreadable.end(), "fd"), unreadable.end()) << p["unreadable"];
  // status is world-readable: RSS and VSZ are still there, PSS is not.
  EXPECT_NEAR(p["memory"]["rss_anon_bytes"].get<double>() / 1048576.0, 64.0, 3.2);
  EXPECT_GE(p["memory"]["vsz_bytes"].get<uint64_t>(), uint64_t{8} << 30);
  EXPECT_TRUE(p["memory"]["pss_bytes"].is_null());
  EXPECT_TRUE(p["fds"].is_null());
  EXPECT_EQ(line_count(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("CAP_SYS_PTRACE"), std::string::npos) << r.err;

  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("[partial_access]"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("smaps_rollup"), std::string::npos) << text.out;
}

}  // namespace
}  // namespace memdx::test
