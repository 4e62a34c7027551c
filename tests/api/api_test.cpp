// libmemdx's public API linked as a program links it (memdx::memdx, <memdx/memdx.h> only): the
// behaviours tests/consumer/check.sh does not reach, here also under the sanitizers.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <memdx/memdx.h>

namespace {

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/memdx-api-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    directory_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(directory_); }

  std::string directory_;
};

// A child that sleeps `seconds` (then exits 0): a process tree the test controls.
pid_t start_sleeper(int seconds) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::sleep(static_cast<unsigned>(seconds));
    ::_exit(0);
  }
  return pid;
}

memdx::ErrorKind kind_thrown(const std::function<void()>& call) {
  try {
    call();
  } catch (const memdx::Error& e) {
    EXPECT_NE(std::string(e.what()), "");
    return e.kind();
  }
  ADD_FAILURE() << "no memdx::Error thrown";
  return memdx::ErrorKind::kSystem;
}

TEST_F(ApiTest, AZombieHasNoMemory) {
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  // Not reaped yet: a zombie, whose address space is gone.
  for (int i = 0; i < 200; ++i) {
    std::ifstream stat("/proc/" + std::to_string(child) + "/stat");
    std::string line;
    std::getline(stat, line);
    if (line.find(") Z ") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  memdx::ProcessMemory memory = memdx::read_process_memory(child);
  ::waitpid(child, nullptr, 0);
  EXPECT_EQ(memory.rss_bytes, 0u);
  EXPECT_EQ(memory.vsz_bytes, 0u);
  EXPECT_FALSE(memory.pss_bytes);
}

TEST_F(ApiTest, InspectWithTreeReadsTheChildren) {
  pid_t child = start_sleeper(5);
  memdx::InspectOptions options;
  options.tree = true;
  memdx::InspectReport report = memdx::inspect(::getpid(), options);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  ASSERT_GE(report.processes.size(), 2u);
  EXPECT_EQ(report.processes[0].pid, ::getpid());
  bool child_read = false;
  for (const memdx::ProcessSnapshot& p : report.processes) child_read |= p.pid == child && p.ppid == ::getpid();
  EXPECT_TRUE(child_read);
  EXPECT_GT(memdx::tree_totals(report).pss_bytes, 0u);
}

TEST_F(ApiTest, ARecordingWithADurationEndsByItself) {
  pid_t child = start_sleeper(30);
  memdx::RecordOptions options;
  options.interval_ms = 50;
  options.duration_ms = 500;
  memdx::Recording recording = memdx::Recording::start(child, directory_ + "/short.memdx", options);
  for (int i = 0; i < 100 && !recording.finished(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(recording.finished());
  recording.stop();
  recording.stop();  // idempotent
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  memdx::Verdict verdict = memdx::analyze_recording(directory_ + "/short.memdx");
  ASSERT_FALSE(verdict.processes.empty());
  EXPECT_EQ(verdict.processes[0].pid, child);
  EXPECT_FALSE(memdx::has_leak(verdict));
}

TEST_F(ApiTest, StopEndsARecordingOfALiveTreeAndAMovedRecordingKeepsRecording) {
  pid_t child = start_sleeper(30);
  memdx::RecordOptions options;
  // An hour between samples: a stop() that waited for the next one would hang the test (and ctest's
  // timeout would fail it).
  options.interval_ms = 3'600'000;
  memdx::Recording first = memdx::Recording::start(child, directory_ + "/moved.memdx", options);
  memdx::Recording moved = std::move(first);
  EXPECT_EQ(moved.path(), directory_ + "/moved.memdx");
  EXPECT_FALSE(moved.finished());
  moved.stop();
  EXPECT_TRUE(moved.finished());
  first.stop();  // NOLINT(bugprone-use-after-move): moved from, there is nothing to stop
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  EXPECT_EQ(memdx::analyze_recording(directory_ + "/moved.memdx").processes.at(0).pid, child);
}

TEST_F(ApiTest, TheDestructorStopsARecording) {
  pid_t child = start_sleeper(30);
  { memdx::Recording recording = memdx::Recording::start(child, directory_ + "/scoped.memdx"); }
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  EXPECT_EQ(memdx::analyze_recording(directory_ + "/scoped.memdx").processes.at(0).pid, child);
}

TEST_F(ApiTest, ErrorsHaveKinds) {
  EXPECT_EQ(kind_thrown([] { memdx::read_process_memory(-1); }), memdx::ErrorKind::kInvalidArgument);
  memdx::RecordOptions too_often;
  too_often.interval_ms = 5;
  EXPECT_EQ(kind_thrown([&] { memdx::Recording::start(::getpid(), directory_ + "/a.memdx", too_often); }),
            memdx::ErrorKind::kInvalidArgument);
  EXPECT_FALSE(std::filesystem::exists(directory_ + "/a.memdx"));  // refused before the file is made
  std::ofstream(directory_ + "/text.memdx") << "not a recording\n";
  EXPECT_EQ(kind_thrown([&] { memdx::analyze_recording(directory_ + "/text.memdx"); }),
            memdx::ErrorKind::kBadRecording);
  EXPECT_EQ(std::string(memdx::to_string(memdx::ErrorKind::kNoSuchProcess)), "no such process");
}

}  // namespace
