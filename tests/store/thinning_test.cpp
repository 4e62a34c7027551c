// Long runs thin old samples: one per bucket and pid remains, the RSS peak of the bucket, and
// recent samples stay at full resolution.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <stdexcept>
#include <vector>

#include "store/recording_reader.h"
#include "store/recording_writer.h"
#include "store/sqlite.h"
#include "store/store_test_util.h"

namespace memdx::store {
namespace {

using memdx::testing::TempDir;
using memdx::testing::typical_meta;

// A recording whose process table lists `pids`: thinning walks each process's rows by key.
RecordingWriter create_for(const std::string& path, const std::vector<pid_t>& pids) {
  RecordingWriter writer = RecordingWriter::create(path, typical_meta());
  for (pid_t pid : pids) writer.add_process(memdx::testing::process_record(pid, 1, {"proc"}, 0));
  return writer;
}

// RSS that wiggles with a few spikes, so the bucket maximum is not simply the first or last.
uint64_t rss_kib_at(pid_t pid, int64_t t_ms) {
  const auto step = static_cast<uint64_t>(t_ms / 100);
  return 1000 + static_cast<uint64_t>(pid) * 7 + (step * 37) % 23 + (step % 13 == 5 ? 500 : 0);
}

std::vector<model::ProcessSample> samples_every_100ms(const std::vector<pid_t>& pids, int64_t end_ms) {
  std::vector<model::ProcessSample> samples;
  for (int64_t t = 0; t < end_ms; t += 100) {
    for (pid_t pid : pids) {
      model::ProcessSample& s = samples.emplace_back();
      s.pid = pid;
      s.t_ms = t;
      s.rss_bytes = rss_kib_at(pid, t) * 1024;
      s.fds = static_cast<uint32_t>(t / 100);  // identifies the sample
    }
  }
  return samples;
}

TEST(StoreThinning, KeepsTheRssPeakOfEachOldBucketAndEveryRecentSample) {
  TempDir dir;
  const std::string path = dir.file("thin.memdx");
  const std::vector<pid_t> pids = {10, 20};
  const std::vector<model::ProcessSample> all = samples_every_100ms(pids, 10'000);
  {
    RecordingWriter writer = create_for(path, pids);
    writer.add_samples(all);
    writer.commit();
    // 50 old samples per pid in 5 one-second buckets: 45 go per pid.
    EXPECT_EQ(writer.thin_samples(5000, 1000), 2 * 45);
    EXPECT_EQ(writer.thin_samples(5000, 1000), 0);  // already thin
    writer.close();
  }
  RecordingReader reader = RecordingReader::open(path);
  for (pid_t pid : pids) {
    std::vector<model::ProcessSample> kept = reader.samples(pid);
    ASSERT_EQ(kept.size(), 5u + 50u);
    for (int64_t bucket = 0; bucket < 5; ++bucket) {
      // The expected survivor: highest RSS in the bucket, earliest on ties.
      int64_t best_t = bucket * 1000;
      for (int64_t t = bucket * 1000; t < (bucket + 1) * 1000; t += 100) {
        if (rss_kib_at(pid, t) > rss_kib_at(pid, best_t)) best_t = t;
      }
      const model::ProcessSample& survivor = kept[static_cast<size_t>(bucket)];
      EXPECT_EQ(survivor.t_ms, best_t) << "pid " << pid << " bucket " << bucket;
      EXPECT_EQ(survivor.rss_bytes, rss_kib_at(pid, best_t) * 1024);
    }
    for (size_t i = 5; i < kept.size(); ++i) {
      EXPECT_EQ(kept[i].t_ms, 5000 + static_cast<int64_t>(i - 5) * 100);
      EXPECT_EQ(kept[i].fds, static_cast<uint32_t>(kept[i].t_ms / 100));
    }
  }
}

TEST(StoreThinning, CoarserThinningKeepsTheOverallPeak) {
  TempDir dir;
  const std::string path = dir.file("thin.memdx");
  const std::vector<model::ProcessSample> all = samples_every_100ms({10}, 10'000);
  uint64_t peak = 0;
  for (const auto& s : all) peak = std::max(peak, s.rss_bytes);
  {
    RecordingWriter writer = create_for(path, {10});
    writer.add_samples(all);
    writer.thin_samples(10'000, 1000);
    writer.thin_samples(10'000, 10'000);  // uncommitted samples can be thinned too
    writer.close();
  }
  std::vector<model::ProcessSample> kept = RecordingReader::open(path).samples(10);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].rss_bytes, peak);
}

// A day of one process at 1 s: thinning it must stay linear (a quadratic plan takes minutes).
TEST(StoreThinning, ScalesToADayOfSamples) {
  TempDir dir;
  RecordingWriter writer = create_for(dir.file("day.memdx"), {7});
  std::vector<model::ProcessSample> day;
  for (int64_t t = 0; t < 100'000'000; t += 1000) {
    model::ProcessSample& s = day.emplace_back();
    s.pid = 7;
    s.t_ms = t;
    s.rss_bytes = static_cast<uint64_t>(t % 7919) * 4096;
  }
  writer.add_samples(day);
  writer.commit();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(writer.thin_samples(100'000'000, 10'000), 90'000);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST(StoreThinning, RejectsAnEmptyBucket) {
  TempDir dir;
  RecordingWriter writer = create_for(dir.file("thin.memdx"), {7});
  EXPECT_THROW(writer.thin_samples(1000, 0), std::invalid_argument);
}

TEST(StoreThinning, LongRunPolicyKeepsTenMinutesFullOneHourAtOneSecondThenTenSeconds) {
  TempDir dir;
  const std::string path = dir.file("long.memdx");
  constexpr int64_t kTwoHoursMs = int64_t{2} * 3600 * 1000;
  constexpr int64_t kIntervalMs = 500;
  {
    RecordingWriter writer = create_for(path, {7});
    std::vector<model::ProcessSample> batch;
    for (int64_t t = 0; t < kTwoHoursMs; t += kIntervalMs) {
      model::ProcessSample& s = batch.emplace_back();
      s.pid = 7;
      s.t_ms = t;
      s.rss_bytes = static_cast<uint64_t>(1 + (t / kIntervalMs) % 17) * 4096;
    }
    writer.add_samples(batch);
    writer.commit();
    writer.thin_for_long_run(kTwoHoursMs);
    writer.close();
  }
  std::map<int64_t, int> per_region;  // 0: older than 1 h, 1: 1 h to 10 min, 2: last 10 min
  for (const auto& s : RecordingReader::open(path).samples(7)) {
    const int64_t age_ms = kTwoHoursMs - s.t_ms;
    ++per_region[age_ms > int64_t{3600} * 1000 ? 0 : age_ms > int64_t{600} * 1000 ? 1 : 2];
  }
  EXPECT_EQ(per_region[0], 3600 / 10);
  EXPECT_EQ(per_region[1], 3000);
  EXPECT_EQ(per_region[2], int64_t{600} * 1000 / kIntervalMs);

  // close() gave the freed pages back to the file system.
  Database db = Database::open(path, SQLITE_OPEN_READONLY, Activity::kReading);
  EXPECT_EQ(db.query_int("PRAGMA freelist_count"), 0);
}

}  // namespace
}  // namespace memdx::store
