// A writer killed with SIGKILL in the middle of a run leaves a recording that opens, is
// consistent, and holds every sample it had committed: at most the uncommitted tail is lost.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <map>
#include <thread>
#include <vector>

#include "store/recording_reader.h"
#include "store/recording_writer.h"
#include "store/sqlite.h"
#include "store/store_test_util.h"

namespace memdx::store {
namespace {

using memdx::testing::process_record;
using memdx::testing::system_sample;
using memdx::testing::TempDir;
using memdx::testing::typical_meta;
using namespace std::chrono_literals;

constexpr pid_t kPids[] = {4242, 4243, 4244};
constexpr int64_t kTickMs = 10;

std::vector<model::ProcessSample> tick_samples(int64_t tick) {
  std::vector<model::ProcessSample> samples;
  for (pid_t pid : kPids) {
    model::ProcessSample& s = samples.emplace_back();
    s.pid = pid;
    s.t_ms = tick * kTickMs;
    s.rss_bytes = static_cast<uint64_t>(1000 + tick) * 4096;
    s.threads = 4;
    if (tick % 3 == 0) s.pss_bytes = s.rss_bytes;
  }
  return samples;
}

// The child: samples continuously, commits every 100 ms (the real cadence is 1 s) and after
// each commit tells the parent how many ticks are now committed. Never returns.
[[noreturn]] void write_until_killed(const std::string& path, int report_fd) {
  RecordingWriter writer = RecordingWriter::create(path, typical_meta());
  for (pid_t pid : kPids) writer.add_process(process_record(pid, 1, {"worker"}, 0));
  writer.commit();
  auto last_commit = std::chrono::steady_clock::now();
  for (int64_t tick = 0;; ++tick) {
    writer.add_samples(tick_samples(tick));
    writer.add_system_sample(system_sample(tick * kTickMs, uint64_t{1} << 30, 0));
    if (std::chrono::steady_clock::now() - last_commit >= 100ms) {
      writer.commit();
      last_commit = std::chrono::steady_clock::now();
      const int64_t committed_ticks = tick + 1;
      if (write(report_fd, &committed_ticks, sizeof committed_ticks) != sizeof committed_ticks) _exit(1);
    }
    std::this_thread::sleep_for(1ms);
  }
}

// Reads one report; false at end of stream.
bool read_report(int fd, int64_t& committed_ticks) {
  return read(fd, &committed_ticks, sizeof committed_ticks) == sizeof committed_ticks;
}

TEST(StoreCrash, SigkilledWriterLosesOnlyTheUncommittedTail) {
  TempDir dir;
  const std::string path = dir.file("killed.memdx");
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(fds[0]);
    try {
      write_until_killed(path, fds[1]);
    } catch (...) {
      _exit(1);
    }
  }
  close(fds[1]);

  int64_t acknowledged = 0;
  for (int reports = 0; reports < 5 && read_report(fds[0], acknowledged); ++reports) {
  }
  std::this_thread::sleep_for(40ms);  // between two commits: an open transaction with rows
  ASSERT_EQ(kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the writer stopped on its own";
  for (int64_t later = 0; read_report(fds[0], later);) acknowledged = later;
  close(fds[0]);
  ASSERT_GT(acknowledged, 0);
  EXPECT_TRUE(std::filesystem::exists(path + "-wal")) << "the kill should leave a WAL to recover";

  RecordingReader reader = RecordingReader::open(path);
  EXPECT_EQ(reader.meta().host, typical_meta().host);
  EXPECT_EQ(reader.processes().size(), std::size(kPids));

  // Every process holds the same prefix of ticks: commits are all or nothing.
  std::map<pid_t, int64_t> ticks;
  reader.for_each_sample([&](const model::ProcessSample& s) {
    EXPECT_EQ(s.t_ms, ticks[s.pid] * kTickMs) << "gap in pid " << s.pid;
    EXPECT_EQ(s.rss_bytes, static_cast<uint64_t>(1000 + ticks[s.pid]) * 4096);
    EXPECT_EQ(s.pss_bytes.has_value(), ticks[s.pid] % 3 == 0);
    ++ticks[s.pid];
  });
  ASSERT_EQ(ticks.size(), std::size(kPids));
  const int64_t recovered = ticks[kPids[0]];
  for (pid_t pid : kPids) EXPECT_EQ(ticks[pid], recovered);
  EXPECT_GE(recovered, acknowledged) << "a committed sample was lost";
  EXPECT_EQ(static_cast<int64_t>(reader.system_samples().size()), recovered);

  Database db = Database::open(path, SQLITE_OPEN_READONLY, Activity::kReading);
  Statement check = db.prepare("PRAGMA integrity_check");
  ASSERT_TRUE(check.step());
  EXPECT_EQ(check.text_at(0), "ok");
}

TEST(StoreCrash, WriterKilledRightAfterCreateLeavesAnEmptyRecording) {
  TempDir dir;
  const std::string path = dir.file("early.memdx");
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    try {
      RecordingWriter writer = RecordingWriter::create(path, typical_meta());
      writer.add_samples(tick_samples(0));  // never committed
      raise(SIGKILL);
    } catch (...) {
    }
    _exit(1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status));

  RecordingReader reader = RecordingReader::open(path);
  EXPECT_EQ(reader.meta().command, typical_meta().command);
  EXPECT_EQ(reader.sample_count(), 0);
}

}  // namespace
}  // namespace memdx::store
