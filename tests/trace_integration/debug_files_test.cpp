// Stripped programs and their separate debug files: memdx_tracee_lines stripped (CMakeLists.txt),
// traced, and its sites named through --debug-dir (the debug file by its name, or in a build-id
// tree), through the .gnu_debuglink of a copy whose debug file lies beside it, and, without any,
// as module+0xOFFSET with one line saying how to name them.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "trace_integration/trace_support.h"

namespace memdx::test {
namespace {

namespace fs = std::filesystem;

const char kLeakerFunction[] = "(anonymous namespace)::keep_history()";

// The site that holds the most at the end: keep_history's 200 blocks of 16 KiB, never freed.
json largest_leak(const json& verdict) {
  if (verdict["heap"].size() != 1) {
    ADD_FAILURE() << "one traced process expected: " << verdict["heap"].dump(2);
    return json::object();
  }
  json largest = json::object();
  for (const json& site : verdict["heap"][0]["sites"]) {
    if (largest.empty() || site["final_live_bytes"].get<uint64_t>() > largest["final_live_bytes"].get<uint64_t>()) {
      largest = site;
    }
  }
  return largest;
}

void expect_named(const json& site) {
  EXPECT_EQ(site["function"], kLeakerFunction) << site.dump(2);
  EXPECT_EQ(site["file"], tracee_source("lines.cpp"));
  EXPECT_EQ(std::set<int>{site["line"].get<int>()}, marked_lines(tracee_source("lines.cpp"), "keep_history"));
  EXPECT_EQ(site["final_live_bytes"], 200 * (16 << 10));
}

// The GNU build-id of an ELF file in hex, from readelf; "" with a test failure when it has none.
std::string build_id_of(const std::string& file) {
  Finished notes = run_for({find_on_path("readelf"), "-n", file});
  std::smatch match;
  static const std::regex kBuildId("Build ID: ([0-9a-f]+)");
  if (!std::regex_search(notes.out, match, kBuildId)) {
    ADD_FAILURE() << file << " has no build-id: " << notes.out << notes.err;
    return "";
  }
  return match[1];
}

class DebugFilesTest : public TraceTest {
 protected:
  void trace_stripped() {
    Finished traced = trace({tracee_path("lines_stripped")});
    ASSERT_EQ(traced.exit_code, 0) << traced.err;
  }
  // The text of `memdx report` on the latest recording, with `options`.
  std::string report_text(const std::vector<std::string>& options = {}) {
    std::vector<std::string> argv = {memdx_path(), "report", recording()};
    argv.insert(argv.end(), options.begin(), options.end());
    Finished text = run_for(argv);
    EXPECT_EQ(text.exit_code, 0) << text.err;
    return text.out;
  }
};

size_t occurrences(const std::string& text, const std::string& part) {
  size_t count = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++count;
  return count;
}

TEST_F(DebugFilesTest, StrippedProgramShowsModuleAndOffsetAndSaysOnceHowToNameThem) {
  ASSERT_NO_FATAL_FAILURE(trace_stripped());
  json site = largest_leak(report());
  std::string function = site["function"];
  std::smatch match;
  static const std::regex kModuleOffset("memdx_tracee_lines_stripped\\+0x([0-9a-f]+)");
  ASSERT_TRUE(std::regex_match(function, match, kModuleOffset)) << site.dump(2);
  EXPECT_EQ(site["file"], "");
  // The offset is the one addr2line takes: on the unstripped build it names the call's line.
  Finished named = run_for({find_on_path("addr2line"), "-f", "-C", "-e", tracee_path("lines"), "0x" + match[1].str()});
  EXPECT_EQ(named.out, std::string(kLeakerFunction) + "\n" + tracee_source("lines.cpp") + ":" +
                           std::to_string(*marked_lines(tracee_source("lines.cpp"), "keep_history").begin()) + "\n");

  std::string text = report_text();
  EXPECT_NE(text.find(function.substr(0, function.find('+'))), std::string::npos) << text;
  EXPECT_EQ(occurrences(text, "have no symbols"), 1u) << text;
  // The hint's example is the first frame shown without a name, in its module's full path.
  std::string hint = text.substr(text.rfind("Frames shown as module+0xOFFSET have no symbols"));
  EXPECT_NE(hint.find("addr2line -f -C -e " + tracee_path("lines_stripped") + " 0x" + match[1].str()),
            std::string::npos)
      << hint;
  EXPECT_NE(hint.find("memdx report " + recording() + " --debug-dir DIR"), std::string::npos) << hint;
}

TEST_F(DebugFilesTest, DebugDirHoldingTheDebugFileByNameNamesTheSites) {
  ASSERT_NO_FATAL_FAILURE(trace_stripped());
  std::string symbols = fs::path(tracee_path("lines")).parent_path() / "symbols";
  expect_named(largest_leak(report({"--debug-dir", symbols})));
  EXPECT_EQ(report_text({"--debug-dir", symbols}).find("memdx_tracee_lines_stripped+0x"), std::string::npos);
}

TEST_F(DebugFilesTest, DebugDirHoldingABuildIdTreeNamesTheSites) {
  ASSERT_NO_FATAL_FAILURE(trace_stripped());
  std::string id = build_id_of(tracee_path("lines_stripped"));
  ASSERT_GT(id.size(), 2u);
  fs::path tree = dir_ / "debug";
  fs::create_directories(tree / ".build-id" / id.substr(0, 2));
  fs::path symbols = fs::path(tracee_path("lines")).parent_path() / "symbols";
  fs::copy_file(symbols / "memdx_tracee_lines_stripped.debug",
                tree / ".build-id" / id.substr(0, 2) / (id.substr(2) + ".debug"));
  // Another directory first, that holds nothing of it: each --debug-dir is searched.
  fs::create_directories(dir_ / "empty");
  expect_named(largest_leak(report({"--debug-dir", (dir_ / "empty").string(), "--debug-dir", tree.string()})));
}

TEST_F(DebugFilesTest, DebugFileOfAnotherBuildIsNotUsed) {
  ASSERT_NO_FATAL_FAILURE(trace_stripped());
  // The name memdx looks for, holding the DWARF of another program: its build-id differs.
  fs::copy_file(tracee_path("sites"), dir_ / "memdx_tracee_lines_stripped.debug");
  json site = largest_leak(report({"--debug-dir", dir_.string()}));
  EXPECT_TRUE(site["function"].get<std::string>().starts_with("memdx_tracee_lines_stripped+0x")) << site.dump(2);
}

TEST_F(DebugFilesTest, DebuglinkBesideTheProgramIsFoundWithoutOptions) {
  Finished traced = trace({tracee_path("lines_debuglink")});
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  expect_named(largest_leak(report()));
  EXPECT_EQ(report_text().find("memdx_tracee_lines_debuglink+0x"), std::string::npos);
}

TEST_F(DebugFilesTest, RunTakesDebugDirToo) {
  std::string symbols = fs::path(tracee_path("lines")).parent_path() / "symbols";
  std::vector<std::string> argv = {memdx_path(),
                                   "run",
                                   "--quiet",
                                   "--debug-dir",
                                   symbols,
                                   "--json",
                                   (dir_ / "verdict.json").string(),
                                   "--out",
                                   (dir_ / "run.memdx").string(),
                                   "--",
                                   tracee_path("lines_stripped")};
  Finished run = run_for(argv);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::ifstream in(dir_ / "verdict.json");
  ASSERT_TRUE(in) << run.err;
  expect_named(largest_leak(json::parse(in)));
}

// A debuginfod server (a listening socket of the test's) named by DEBUGINFOD_URLS, as Ubuntu
// names one for every login: memdx names frames of libraries without local debug files
// (libstdc++, its operator new) and connects to nothing.
TEST_F(DebugFilesTest, NoDebugFileIsFetchedOverTheNetwork) {
  int server = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  ASSERT_GE(server, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(server, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(::listen(server, 16), 0);
  socklen_t length = sizeof(address);
  ASSERT_EQ(::getsockname(server, reinterpret_cast<sockaddr*>(&address), &length), 0);
  std::string url = "http://127.0.0.1:" + std::to_string(ntohs(address.sin_port));

  Finished traced = trace({tracee_path("sites"), "vector", "2"});
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  ::setenv("DEBUGINFOD_URLS", url.c_str(), 1);
  ::setenv("DEBUGINFOD_CACHE_PATH", (dir_ / "debuginfod-cache").c_str(), 1);
  ::setenv("DEBUGINFOD_TIMEOUT", "5", 1);
  CommandResult text = run_command({memdx_path(), "report", recording(), "--top", "5"});
  ::unsetenv("DEBUGINFOD_URLS");
  ::unsetenv("DEBUGINFOD_CACHE_PATH");
  ::unsetenv("DEBUGINFOD_TIMEOUT");
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("log_events"), std::string::npos) << text.out;  // the sites were named
  int connection = ::accept4(server, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  EXPECT_LT(connection, 0) << "memdx report asked the debuginfod server " << url;
  if (connection >= 0) ::close(connection);
  ::close(server);
}

}  // namespace
}  // namespace memdx::test
