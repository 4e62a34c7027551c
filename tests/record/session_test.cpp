// The recording pipeline's own module (src/record/) on processes the test starts: the metadata a
// recording begins with, the session loop's three ways to end (the root exits, the duration
// passes, the caller stops it), and what it writes while it runs.
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "memdx/version.h"
#include "proc/procfs.h"
#include "record/meta.h"
#include "record/session.h"
#include "store/recording_reader.h"
#include "store/recording_writer.h"
#include "store/store_test_util.h"

namespace memdx::record {
namespace {

using memdx::testing::TempDir;

// A child that sleeps `seconds`, then exits with code 7.
pid_t start_sleeper(double seconds) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::usleep(static_cast<useconds_t>(seconds * 1e6));
    ::_exit(7);
  }
  return pid;
}

TEST(Meta, SaysWhenWhereWhatAndHowOften) {
  proc::ProcFs fs;
  model::RecordingMeta meta = make_meta(fs, "watch", {"server", "--port", "80"}, 250, ::getpid());
  EXPECT_EQ(meta.kind, "watch");
  EXPECT_EQ(meta.command, (std::vector<std::string>{"server", "--port", "80"}));
  EXPECT_EQ(meta.interval_ms, 250);
  EXPECT_EQ(meta.memdx_version, MEMDX_VERSION_STRING);
  EXPECT_TRUE(std::regex_match(meta.started_at_utc, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")))
      << meta.started_at_utc;
  auto now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  EXPECT_NEAR(static_cast<double>(meta.started_at_unix_ms), static_cast<double>(now_ms), 5000);
  EXPECT_FALSE(meta.host.empty());
  EXPECT_FALSE(meta.kernel.empty());
  ASSERT_TRUE(meta.mem_total_bytes);
  EXPECT_GT(*meta.mem_total_bytes, uint64_t{64} << 20);
}

TEST(Session, OptionsReadPssOnABudgetOfTheInterval) {
  proc::ProcFs fs;
  EXPECT_EQ(session_options_for(fs, ::getpid(), 50).sampler.rollup_budget, std::chrono::microseconds(1000));
  EXPECT_EQ(session_options_for(fs, ::getpid(), 1000).sampler.rollup_budget, std::chrono::microseconds(10000));
  EXPECT_EQ(session_options_for(fs, ::getpid(), 1000).interval_ms, 1000);
}

struct Recorded {
  SessionResult result;
  std::vector<model::ProcessRecord> processes;
  size_t samples = 0;
  size_t system_samples = 0;
};

Recorded record(pid_t root, SessionOptions options, const TempDir& dir) {
  const std::string path = dir.file("session.memdx");
  proc::ProcFs fs;
  Recorded out;
  {
    store::RecordingWriter writer =
        store::RecordingWriter::create(path, make_meta(fs, "watch", {"sleeper"}, options.interval_ms, root));
    out.result = run_session(fs, writer, root, options);
    writer.close();
  }
  store::RecordingReader reader = store::RecordingReader::open(path);
  out.processes = reader.processes();
  for (const model::ProcessRecord& p : out.processes) out.samples += reader.samples(p.pid).size();
  out.system_samples = reader.system_samples().size();
  return out;
}

TEST(Session, EndsWhenTheRootExits) {
  TempDir dir;
  pid_t child = start_sleeper(0.6);
  proc::ProcFs fs;
  SessionOptions options = session_options_for(fs, child, 50);
  options.raise_fd_limit = false;
  // The test reaps its child itself, as a library's caller does: the session does not reap.
  std::thread reaper([child] { ::waitpid(child, nullptr, 0); });
  Recorded r = record(child, options, dir);
  reaper.join();
  EXPECT_EQ(r.result.end, SessionResult::End::kRootExited);
  EXPECT_GE(r.result.duration_ms, 500);
  ASSERT_EQ(r.processes.size(), 1u);
  EXPECT_EQ(r.processes[0].pid, child);
  EXPECT_TRUE(r.processes[0].exited_ms);
  EXPECT_GE(r.samples, 5u);  // 50 ms ticks over 0.6 s
  EXPECT_EQ(r.system_samples, static_cast<size_t>(r.result.ticks));
}

TEST(Session, EndsWhenTheDurationPasses) {
  TempDir dir;
  pid_t child = start_sleeper(30);
  proc::ProcFs fs;
  SessionOptions options = session_options_for(fs, child, 50);
  options.duration_ms = 400;
  Recorded r = record(child, options, dir);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  EXPECT_EQ(r.result.end, SessionResult::End::kDurationReached);
  EXPECT_GE(r.result.duration_ms, 400);
  ASSERT_EQ(r.result.still_running.size(), 1u);
  EXPECT_EQ(r.result.still_running[0].pid, child);
  ASSERT_EQ(r.processes.size(), 1u);
  EXPECT_FALSE(r.processes[0].exited_ms);  // still running when it ended: open-ended
}

// What libmemdx's Recording::stop() uses: the session asks between ticks whether to stop, and
// takes no signal of its host.
TEST(Session, EndsWhenItsWaitSaysStop) {
  TempDir dir;
  pid_t child = start_sleeper(30);
  proc::ProcFs fs;
  SessionOptions options = session_options_for(fs, child, 100);
  int waits = 0;
  std::vector<int64_t> timeouts_ms;
  options.wait_for_stop = [&](int64_t timeout_ms) {
    timeouts_ms.push_back(timeout_ms);
    if (++waits == 3) return true;  // the third wait is told to stop, at once
    std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
    return false;
  };
  Recorded r = record(child, options, dir);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  EXPECT_EQ(r.result.end, SessionResult::End::kInterrupted);
  EXPECT_EQ(waits, 3);
  EXPECT_EQ(r.result.ticks, 3);  // one tick before each wait
  for (int64_t timeout : timeouts_ms) {
    EXPECT_GT(timeout, 0);
    EXPECT_LE(timeout, 100);
  }
  EXPECT_EQ(r.processes.size(), 1u);
}

}  // namespace
}  // namespace memdx::record
