// Helpers of the recording commands (cli/recording_common.h): the default recording name, the
// --suppress files read before anything starts, and the text written to a reader that left.
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "cli/errors.h"
#include "cli/recording_common.h"

namespace memdx::cli {
namespace {

namespace fs = std::filesystem;

// Runs the test in a directory of its own: default_recording_path names files in the current one.
class InTempDirectory : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/memdx-cli-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    directory_ = pattern;
    previous_ = fs::current_path();
    fs::current_path(directory_);
  }
  void TearDown() override {
    fs::current_path(previous_);
    fs::remove_all(directory_);
  }

  fs::path directory_;
  fs::path previous_;
};

TEST_F(InTempDirectory, TheDefaultRecordingNameIsFileSafeAndNeverTaken) {
  std::string first = default_recording_path("my server/v2:8080");
  EXPECT_EQ(first.rfind("./memdx-my_server_v2_8080-", 0), 0u) << first;
  EXPECT_TRUE(first.ends_with(".memdx")) << first;
  std::ofstream(first) << "taken";
  std::string second = default_recording_path("my server/v2:8080");
  EXPECT_NE(second, first);  // the same second, the same name: a suffix
  EXPECT_FALSE(fs::exists(second));
  EXPECT_EQ(default_recording_path("").rfind("./memdx-target-", 0), 0u);
}

TEST_F(InTempDirectory, ABadSuppressionFileIsAUsageErrorNamingItsLine) {
  std::ofstream("known.supp") << "leak:ok_function\n{\n  only a name\n";
  SiteChoices choices;
  choices.suppression_files = {"known.supp"};
  try {
    choices.load();
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("known.supp:"), std::string::npos) << e.what();
  }
  std::ofstream("good.supp") << "leak:ok_function\nfun:other\n";
  choices.suppression_files = {"good.supp"};
  choices.load();
  EXPECT_FALSE(choices.suppressions.empty());
  analyze::SiteOptions options = choices.site_options(7, false);
  EXPECT_EQ(options.site_limit, 7u);
  EXPECT_FALSE(options.sites_judge_growth);
  EXPECT_EQ(options.suppressions, &choices.suppressions);
}

// `memdx report R | head -1`: the reader goes away; the rest of the text is lost, not the run.
TEST(PrintText, AClosedReaderIsNoFailure) {
  int pipe_ends[2];
  ASSERT_EQ(::pipe(pipe_ends), 0);
  ::close(pipe_ends[0]);
  std::FILE* stream = ::fdopen(pipe_ends[1], "w");
  ASSERT_NE(stream, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  EXPECT_FALSE(print_text(stream, std::string(100000, 'x')));
  std::fclose(stream);
  std::FILE* null = std::fopen("/dev/null", "w");
  EXPECT_TRUE(print_text(null, "text\n"));
  std::fclose(null);
}

}  // namespace
}  // namespace memdx::cli
