// How big a recording grows: bytes per process sample on 100,000 realistic samples (10
// processes x 10,000 ticks at 200 ms, with one system sample per tick), so that a schema change
// that bloats the file fails here.
#include <gtest/gtest.h>

#include <filesystem>
#include <iostream>
#include <random>
#include <vector>

#include "store/recording_reader.h"
#include "store/recording_writer.h"
#include "store/sqlite.h"
#include "store/store_error.h"
#include "store/store_test_util.h"

namespace memdx::store {
namespace {

using memdx::testing::TempDir;
using memdx::testing::typical_meta;

constexpr int kProcesses = 10;
constexpr int kTicks = 10'000;
constexpr int64_t kIntervalMs = 200;
constexpr double kMaxBytesPerSample = 64;
constexpr uint64_t kPageBytes = 4096;

struct ProcessState {
  pid_t pid = 0;
  uint64_t rss_pages = 0;
  uint64_t vsz_pages = 0;
  uint32_t fds = 0;
  uint32_t threads = 0;
  bool traced = false;
  uint64_t heap_live_bytes = 0;
};

// Values as /proc reports them: sizes in 4 KiB pages drifting slowly, pids above 2^16.
std::vector<model::ProcessSample> next_tick(std::vector<ProcessState>& processes, int64_t tick, std::mt19937_64& rng) {
  std::uniform_int_distribution<int> drift(-8, 12);
  std::vector<model::ProcessSample> samples;
  for (ProcessState& p : processes) {
    p.rss_pages = static_cast<uint64_t>(static_cast<int64_t>(p.rss_pages) + drift(rng));
    if (rng() % 50 == 0) p.fds += 1;
    model::ProcessSample& s = samples.emplace_back();
    s.pid = p.pid;
    s.t_ms = tick * kIntervalMs;
    s.rss_bytes = p.rss_pages * kPageBytes;
    s.rss_anon_bytes = p.rss_pages * 3 / 4 * kPageBytes;
    s.rss_file_bytes = s.rss_bytes - s.rss_anon_bytes - 64 * kPageBytes;
    s.rss_shmem_bytes = 64 * kPageBytes;
    s.vsz_bytes = p.vsz_pages * kPageBytes;
    s.swap_bytes = 0;
    if (tick % 5 == 0) s.pss_bytes = s.rss_bytes - 32 * kPageBytes;  // smaps_rollup on some ticks only
    s.fds = p.fds;
    s.threads = p.threads;
    if (p.traced) {
      p.heap_live_bytes += static_cast<uint64_t>(rng() % 100'000);
      s.heap_live_bytes = p.heap_live_bytes;
    }
  }
  return samples;
}

TEST(StoreSize, BytesPerSampleStaySmall) {
  TempDir dir;
  const std::string path = dir.file("size.memdx");
  std::mt19937_64 rng(42);
  std::vector<ProcessState> processes;
  processes.reserve(kProcesses);
  for (int i = 0; i < kProcesses; ++i) {
    processes.push_back({.pid = 181'000 + i * 13,
                         .rss_pages = 20'000 + static_cast<uint64_t>(i) * 30'000,                 // 80 MiB .. 1.1 GiB
                         .vsz_pages = (uint64_t{4} << 30) / 4096 * static_cast<uint64_t>(i + 1),  // 4 .. 40 GiB
                         .fds = 12,
                         .threads = static_cast<uint32_t>(4 + i),
                         .traced = i % 2 == 0,
                         .heap_live_bytes = 10'000'000});
  }
  {
    RecordingWriter writer = RecordingWriter::create(path, typical_meta());
    for (int tick = 0; tick < kTicks; ++tick) {
      writer.add_samples(next_tick(processes, tick, rng));
      writer.add_system_sample({.t_ms = tick * kIntervalMs,
                                .mem_available_bytes = (uint64_t{20} << 30) - static_cast<uint64_t>(tick) * 4096,
                                .swap_free_bytes = uint64_t{2} << 30,
                                .cgroup_current_bytes = uint64_t{3} << 30,
                                .psi_some_avg10 = 0.0});
      if (tick % 5 == 4) writer.commit();  // once a second, as commit_if_due would
    }
    writer.close();
  }
  constexpr int64_t kSamples = int64_t{kProcesses} * kTicks;
  ASSERT_EQ(RecordingReader::open(path).sample_count(), kSamples);

  const auto file_bytes = static_cast<double>(std::filesystem::file_size(path));
  const double bytes_per_sample = file_bytes / static_cast<double>(kSamples);
  // The samples table alone, where SQLite was built with the dbstat table (Debian's is).
  double table_bytes_per_sample = 0;
  try {
    Database db = Database::open(path, SQLITE_OPEN_READONLY, Activity::kReading);
    table_bytes_per_sample =
        static_cast<double>(db.query_int("SELECT sum(pgsize) FROM dbstat WHERE name = 'samples'")) /
        static_cast<double>(kSamples);
  } catch (const StoreError&) {
  }
  std::cout << "recording of " << kSamples << " process samples (+" << kTicks << " system samples): " << file_bytes
            << " bytes, " << bytes_per_sample << " bytes per sample; samples table alone " << table_bytes_per_sample
            << " bytes per sample\n";
  RecordProperty("bytes_per_sample", std::to_string(bytes_per_sample));
  RecordProperty("samples_table_bytes_per_sample", std::to_string(table_bytes_per_sample));
  EXPECT_LT(bytes_per_sample, kMaxBytesPerSample);
}

}  // namespace
}  // namespace memdx::store
