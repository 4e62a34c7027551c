// What an output path names (a descriptor, the end of its links) and when two outputs name one
// file, on real files in a private directory.
#include "cli/output_paths.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli/errors.h"

namespace memdx::cli {
namespace {

namespace fs = std::filesystem;

class OutputPaths : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "memdx-cli-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // The UsageError's line, or "" when the outputs are distinct.
  static std::string conflict(const std::vector<NamedOutput>& outputs, const std::string& input = {}) {
    try {
      check_distinct_outputs(outputs, input);
    } catch (const UsageError& e) {
      return e.what();
    }
    return "";
  }

  fs::path dir_;
};

TEST(NamedDescriptor, KnowsTheNamesOfOpenDescriptors) {
  EXPECT_EQ(named_descriptor("-"), 1);
  EXPECT_EQ(named_descriptor("/dev/stdout"), 1);
  EXPECT_EQ(named_descriptor("/dev/stderr"), 2);
  EXPECT_EQ(named_descriptor("/dev/fd/1"), 1);
  EXPECT_EQ(named_descriptor("/dev/fd/63"), 63);  // bash's >(...)
  EXPECT_EQ(named_descriptor("/proc/self/fd/7"), 7);
}

TEST(NamedDescriptor, OtherPathsAreFiles) {
  for (const char* path : {"", "--", "./-", "stdout", "/dev/fd/", "/dev/fd/x", "/dev/fd/1/", "/dev/fd/-1", "/dev/fd/+1",
                           "/dev/fd/99999999999", "/proc/self/fd", "/proc/1/fd/1", "/dev/null"}) {
    EXPECT_EQ(named_descriptor(path), std::nullopt) << path;
  }
}

TEST_F(OutputPaths, FollowLinksWalksEveryLinkToAnEndThatNeedNotExist) {
  fs::create_symlink("b", path("a"));
  fs::create_symlink("sub/../c", path("b"));
  EXPECT_EQ(follow_links(path("a")), path("sub/../c"));
  EXPECT_EQ(follow_links(path("c")), path("c"));  // no link: itself
}

TEST_F(OutputPaths, FollowLinksStopsAtADescriptorsName) {
  fs::create_symlink("/dev/stdout", path("out"));
  EXPECT_EQ(follow_links(path("out")), "/dev/stdout");
  EXPECT_EQ(follow_links("-"), "-");
}

TEST_F(OutputPaths, FollowLinksRefusesALoop) {
  fs::create_symlink("b", path("a"));
  fs::create_symlink("a", path("b"));
  EXPECT_THROW(follow_links(path("a")), RuntimeError);
}

TEST_F(OutputPaths, FollowLinksRefusesAnotherUsersLinkInAStickyDirectory) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a link to another user";
  fs::create_directories(path("tmp"));
  ASSERT_EQ(::chmod(path("tmp").c_str(), 01777), 0);
  fs::create_symlink("/etc/passwd", path("tmp/v.json"));
  ASSERT_EQ(::lchown(path("tmp/v.json").c_str(), 65534, 65534), 0);
  EXPECT_THROW(follow_links(path("tmp/v.json")), RuntimeError);
  // The same link is followed where the sticky rule does not apply.
  ASSERT_EQ(::chmod(path("tmp").c_str(), 0777), 0);
  EXPECT_EQ(follow_links(path("tmp/v.json")), "/etc/passwd");
}

TEST_F(OutputPaths, OneMissingFileSpelledTwoWaysIsOneFile) {
  fs::create_directories(path("sub"));
  EXPECT_EQ(conflict({{"--json", path("v.json")}, {"--html", path("sub/../v.json")}}),
            "--html and --json name the same file (" + path("sub/../v.json") + "): give each output its own path");
  EXPECT_NE(conflict({{"--json", path("v.json")}, {"--html", path("./v.json")}}), "");
  EXPECT_EQ(conflict({{"--json", path("v.json")}, {"--html", path("v.html")}}), "");
}

TEST_F(OutputPaths, ADanglingLinkIsTheFileItNames) {
  fs::create_symlink("real.json", path("v.json"));
  EXPECT_NE(conflict({{"--json", path("v.json")}, {"--html", path("real.json")}}), "");
}

TEST_F(OutputPaths, TwoNamesOfOneExistingFileAreOneFile) {
  std::ofstream(path("a")) << "x";
  fs::create_hard_link(path("a"), path("b"));
  EXPECT_NE(conflict({{"--json", path("a")}, {"--html", path("b")}}), "");
  EXPECT_NE(conflict({{"--out", path("a"), OutputKind::kRecording}, {"--json", path("b")}}), "");
}

TEST_F(OutputPaths, ACharacterDeviceMayBeNamedTwice) {
  EXPECT_EQ(conflict({{"--json", "/dev/null"}, {"--html", "/dev/null"}}), "");
}

TEST_F(OutputPaths, EveryNameOfStandardOutputIsOneFile) {
  EXPECT_NE(conflict({{"--json", "-"}, {"--html", "/dev/stdout"}}), "");
  EXPECT_NE(conflict({{"--json", "/dev/fd/1"}, {"--html", "/proc/self/fd/1"}}), "");
}

TEST_F(OutputPaths, ARecordingNamedDashIsAFile) {
  EXPECT_EQ(conflict({{"--out", "-", OutputKind::kRecording}, {"--json", "-"}}), "");
}

TEST_F(OutputPaths, UnaskedOutputsAreSkipped) {
  EXPECT_EQ(conflict({{"--json", ""}, {"--html", ""}, {"--out", path("r"), OutputKind::kRecording}}), "");
}

TEST_F(OutputPaths, AnOutputMustNotBeTheRecordingBeingRead) {
  std::ofstream(path("r.memdx")) << "recording";
  EXPECT_EQ(conflict({{"--json", path("v.json")}, {"--pprof", path("./r.memdx")}}, path("r.memdx")),
            "--pprof names the recording being read (" + path("./r.memdx") + "): the report would replace it");
  EXPECT_EQ(conflict({{"--json", path("v.json")}}, path("r.memdx")), "");
}

}  // namespace
}  // namespace memdx::cli
