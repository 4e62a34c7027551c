// What the writer stores, the reader gives back: metadata, processes, samples (with their
// absent optional values), system samples and trace chunks.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include "store/recording_reader.h"
#include "store/recording_writer.h"
#include "store/schema.h"
#include "store/store_error.h"
#include "store/store_test_util.h"

namespace memdx::store {
namespace {

using memdx::testing::process_record;
using memdx::testing::system_sample;
using memdx::testing::TempDir;
using memdx::testing::typical_meta;

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
constexpr uint64_t kGiB = 1024 * kMiB;

model::ProcessSample full_sample(pid_t pid, int64_t t_ms) {
  model::ProcessSample s;
  s.pid = pid;
  s.t_ms = t_ms;
  s.rss_bytes = 300 * kMiB + static_cast<uint64_t>(t_ms) * kKiB;
  s.rss_anon_bytes = 250 * kMiB;
  s.rss_file_bytes = 40 * kMiB;
  s.rss_shmem_bytes = 10 * kMiB;
  s.vsz_bytes = 400 * kGiB;  // reservations: far above what fits in 32 bits
  s.swap_bytes = 12 * kKiB;
  s.pss_bytes = 280 * kMiB;
  s.fds = 42;
  s.threads = 17;
  s.heap_live_bytes = 123'456'789;  // byte exact, not a multiple of 1 KiB
  return s;
}

model::ProcessSample sparse_sample(pid_t pid, int64_t t_ms) {
  model::ProcessSample s = full_sample(pid, t_ms);
  s.pss_bytes.reset();
  s.heap_live_bytes.reset();
  s.swap_bytes = 0;
  return s;
}

void expect_same(const model::ProcessSample& a, const model::ProcessSample& b) {
  EXPECT_EQ(a.pid, b.pid);
  EXPECT_EQ(a.t_ms, b.t_ms);
  EXPECT_EQ(a.rss_bytes, b.rss_bytes);
  EXPECT_EQ(a.rss_anon_bytes, b.rss_anon_bytes);
  EXPECT_EQ(a.rss_file_bytes, b.rss_file_bytes);
  EXPECT_EQ(a.rss_shmem_bytes, b.rss_shmem_bytes);
  EXPECT_EQ(a.vsz_bytes, b.vsz_bytes);
  EXPECT_EQ(a.swap_bytes, b.swap_bytes);
  EXPECT_EQ(a.pss_bytes, b.pss_bytes);
  EXPECT_EQ(a.fds, b.fds);
  EXPECT_EQ(a.threads, b.threads);
  EXPECT_EQ(a.heap_live_bytes, b.heap_live_bytes);
}

TEST(StoreRoundTrip, MetaComesBackFieldByField) {
  TempDir dir;
  const std::string path = dir.file("meta.memdx");
  RecordingWriter::create(path, typical_meta()).close();

  RecordingReader reader = RecordingReader::open(path);
  EXPECT_EQ(reader.schema_version(), kSchemaVersion);
  model::RecordingMeta meta = reader.meta();
  model::RecordingMeta expected = typical_meta();
  EXPECT_EQ(meta.command, expected.command);
  EXPECT_EQ(meta.kind, expected.kind);
  EXPECT_EQ(meta.started_at_utc, expected.started_at_utc);
  EXPECT_EQ(meta.started_at_unix_ms, expected.started_at_unix_ms);
  EXPECT_EQ(meta.host, expected.host);
  EXPECT_EQ(meta.kernel, expected.kernel);
  EXPECT_EQ(meta.memdx_version, expected.memdx_version);
  EXPECT_EQ(meta.interval_ms, expected.interval_ms);
  EXPECT_EQ(meta.cgroup_max_bytes, expected.cgroup_max_bytes);
  EXPECT_EQ(meta.mem_total_bytes, expected.mem_total_bytes);
}

TEST(StoreRoundTrip, AbsentOptionalMetaStaysAbsent) {
  TempDir dir;
  const std::string path = dir.file("meta.memdx");
  model::RecordingMeta meta = typical_meta();
  meta.cgroup_max_bytes.reset();
  meta.mem_total_bytes.reset();
  meta.kind = "watch";
  RecordingWriter::create(path, meta).close();

  model::RecordingMeta read = RecordingReader::open(path).meta();
  EXPECT_EQ(read.kind, "watch");
  EXPECT_FALSE(read.cgroup_max_bytes.has_value());
  EXPECT_FALSE(read.mem_total_bytes.has_value());
}

TEST(StoreRoundTrip, PutMetaAddsAndReplacesEntries) {
  TempDir dir;
  const std::string path = dir.file("meta.memdx");
  {
    RecordingWriter writer = RecordingWriter::create(path, typical_meta());
    writer.put_meta("trace_format", "memdx.trace/1");
    writer.put_meta("target_exit_code", int64_t{3});
    writer.put_meta("target_exit_code", int64_t{0});
    writer.put_meta("host", "renamed");  // a RecordingMeta key may be corrected later
    writer.close();
  }
  RecordingReader reader = RecordingReader::open(path);
  EXPECT_EQ(reader.meta_value("trace_format"), "memdx.trace/1");
  EXPECT_EQ(reader.meta_value("target_exit_code"), "0");
  EXPECT_EQ(reader.meta_value("missing"), std::nullopt);
  EXPECT_EQ(reader.meta().host, "renamed");
}

TEST(StoreRoundTrip, ProcessesKeepTheirExitAndCommand) {
  TempDir dir;
  const std::string path = dir.file("procs.memdx");
  {
    RecordingWriter writer = RecordingWriter::create(path, typical_meta());
    writer.add_process(process_record(100, 1, {"./server", "-v"}, 0));
    writer.add_process(process_record(101, 100, {"worker"}, 400));
    writer.add_process(process_record(102, 100, {}, 600));
    EXPECT_TRUE(writer.mark_exited(101, 5000, 0, std::nullopt));
    EXPECT_TRUE(writer.mark_exited(102, 5200, std::nullopt, 9));
    EXPECT_FALSE(writer.mark_exited(999, 5200, 1, std::nullopt));
    writer.close();
  }
  std::vector<model::ProcessRecord> procs = RecordingReader::open(path).processes();
  ASSERT_EQ(procs.size(), 3u);
  EXPECT_EQ(procs[0].pid, 100);
  EXPECT_EQ(procs[0].ppid, 1);
  EXPECT_EQ(procs[0].command, (std::vector<std::string>{"./server", "-v"}));
  EXPECT_FALSE(procs[0].exited_ms.has_value());
  EXPECT_FALSE(procs[0].exit_code.has_value());
  EXPECT_FALSE(procs[0].exit_signal.has_value());

  EXPECT_EQ(procs[1].pid, 101);
  EXPECT_EQ(procs[1].first_seen_ms, 400);
  EXPECT_EQ(procs[1].exited_ms, 5000);
  EXPECT_EQ(procs[1].exit_code, 0);
  EXPECT_FALSE(procs[1].exit_signal.has_value());

  EXPECT_EQ(procs[2].pid, 102);
  EXPECT_TRUE(procs[2].command.empty());
  EXPECT_FALSE(procs[2].exit_code.has_value());
  EXPECT_EQ(procs[2].exit_signal, 9);
}

TEST(StoreRoundTrip, ReusedPidReplacesTheEarlierProcess) {
  TempDir dir;
  const std::string path = dir.file("procs.memdx");
  {
    RecordingWriter writer = RecordingWriter::create(path, typical_meta());
    writer.add_process(process_record(100, 1, {"old"}, 0));
    ASSERT_TRUE(writer.mark_exited(100, 50, 0, std::nullopt));
    writer.add_process(process_record(100, 7, {"new"}, 90));
    writer.close();
  }
  std::vector<model::ProcessRecord> procs = RecordingReader::open(path).processes();
  ASSERT_EQ(procs.size(), 1u);
  EXPECT_EQ(procs[0].command, std::vector<std::string>{"new"});
  EXPECT_FALSE(procs[0].exited_ms.has_value());
}

TEST(StoreRoundTrip, SamplesComeBackInTimeOrderWithNullsPreserved) {
  TempDir dir;
  const std::string path = dir.file("samples.memdx");
  std::vector<model::ProcessSample> written = {full_sample(100, 400), sparse_sample(100, 0), full_sample(200, 200),
                                               full_sample(100, 200), sparse_sample(200, 0)};
  {
    RecordingWriter writer = RecordingWriter::create(path, typical_meta());
    writer.add_samples(written);
    writer.close();
  }
  RecordingReader reader = RecordingReader::open(path);
  EXPECT_EQ(reader.sample_count(), 5);

  std::vector<model::ProcessSample> pid100 = reader.samples(100);
  ASSERT_EQ(pid100.size(), 3u);
  expect_same(pid100[0], sparse_sample(100, 0));
  expect_same(pid100[1], full_sample(100, 200));
  expect_same(pid100[2], full_sample(100, 400));
  EXPECT_FALSE(pid100[0].pss_bytes.has_value());
  EXPECT_FALSE(pid100[0].heap_live_bytes.has_value());

  std::vector<model::ProcessSample> pid200 = reader.samples(200);
  ASSERT_EQ(pid200.size(), 2u);
  expect_same(pid200[0], sparse_sample(200, 0));
  expect_same(pid200[1], full_sample(200, 200));
  EXPECT_TRUE(reader.samples(300).empty());

  std::vector<std::pair<pid_t, int64_t>> visited;
  reader.for_each_sample([&](const model::ProcessSample& s) { visited.emplace_back(s.pid, s.t_ms); });
  EXPECT_EQ(visited, (std::vector<std::pair<pid_t, int64_t>>{{100, 0}, {100, 200}, {100, 400}, {200, 0}, {200, 200}}));
}

TEST(StoreRoundTrip, SizesAreKeptInWholeKibRoundedUp) {
  TempDir dir;
  const std::string path = dir.file("kib.memdx");
  model::ProcessSample s = full_sample(100, 0);
  s.rss_bytes = 1;
  s.rss_anon_bytes = 1025;
  s.rss_file_bytes = 0;
  s.pss_bytes = 2047;
  {
    RecordingWriter writer = RecordingWriter::create(path, typical_meta());
    writer.add_samples(std::vector<model::ProcessSample>{s});
    writer.close();
  }
  model::ProcessSample read = RecordingReader::open(path).samples(100).at(0);
  EXPECT_EQ(read.rss_bytes, 1024u);
  EXPECT_EQ(read.rss_anon_bytes, 2048u);
  EXPECT_EQ(read.rss_file_bytes, 0u);
  EXPECT_EQ(read.pss_bytes, 2048u);
  EXPECT_EQ(read.heap_live_bytes, s.heap_live_bytes);  // the tracer's bytes stay exact
}

TEST(StoreRoundTrip, SystemSamplesKeepTheirOptionalValues) {
  TempDir dir;
  const std::string path = dir.file("system.memdx");
  {
    RecordingWriter writer = RecordingWriter::create(path, typical_meta());
    writer.add_system_sample({.t_ms = 200,
                              .mem_available_bytes = 9 * kGiB + 17,
                              .swap_free_bytes = 2 * kGiB,
                              .cgroup_current_bytes = 512 * kMiB + 4096,
                              .psi_some_avg10 = 1.25});
    writer.add_system_sample(system_sample(0, 10 * kGiB, 0));
    model::SystemSample unread;  // /proc/meminfo unreadable that tick
    unread.t_ms = 400;
    writer.add_system_sample(unread);
    writer.close();
  }
  std::vector<model::SystemSample> samples = RecordingReader::open(path).system_samples();
  ASSERT_EQ(samples.size(), 3u);
  EXPECT_EQ(samples[0].swap_free_bytes, 0u);  // read: no swap
  EXPECT_FALSE(samples[2].mem_available_bytes.has_value());
  EXPECT_FALSE(samples[2].swap_free_bytes.has_value());
  EXPECT_EQ(samples[0].t_ms, 0);
  EXPECT_EQ(samples[0].mem_available_bytes, 10 * kGiB);
  EXPECT_FALSE(samples[0].cgroup_current_bytes.has_value());
  EXPECT_FALSE(samples[0].psi_some_avg10.has_value());
  EXPECT_EQ(samples[1].t_ms, 200);
  EXPECT_EQ(samples[1].mem_available_bytes, 9 * kGiB + 17);
  EXPECT_EQ(samples[1].swap_free_bytes, 2 * kGiB);
  EXPECT_EQ(samples[1].cgroup_current_bytes, 512 * kMiB + 4096);
  EXPECT_EQ(samples[1].psi_some_avg10, 1.25);
}

TEST(StoreRoundTrip, TraceChunksStreamBackInArrivalOrder) {
  TempDir dir;
  const std::string path = dir.file("trace.memdx");
  const std::vector<std::byte> first = {std::byte{0x00}, std::byte{0xff}, std::byte{0x10}};
  {
    RecordingWriter writer = RecordingWriter::create(path, typical_meta());
    writer.add_trace_chunk("heap_events", 100, 40, first);
    writer.add_trace_chunk("module_map", 101, 20, {});
    writer.close();
  }
  TraceChunkCursor cursor = RecordingReader::open(path).trace_chunks();  // outlives its reader
  std::optional<TraceChunk> a = cursor.next();
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->kind, "heap_events");
  EXPECT_EQ(a->pid, 100);
  EXPECT_EQ(a->t_ms, 40);
  EXPECT_EQ(a->data, first);
  std::optional<TraceChunk> b = cursor.next();
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->kind, "module_map");
  EXPECT_TRUE(b->data.empty());
  EXPECT_GT(b->id, a->id);
  EXPECT_FALSE(cursor.next().has_value());
  EXPECT_FALSE(cursor.next().has_value());
}

TEST(StoreRoundTrip, ReaderSeesOnlyCommittedSamplesOfALiveWriter) {
  TempDir dir;
  const std::string path = dir.file("live.memdx");
  RecordingWriter writer = RecordingWriter::create(path, typical_meta());
  writer.add_samples(std::vector<model::ProcessSample>{full_sample(1, 0)});
  writer.commit();
  writer.add_samples(std::vector<model::ProcessSample>{full_sample(1, 200)});

  EXPECT_EQ(RecordingReader::open(path).sample_count(), 1);
  writer.commit();
  EXPECT_EQ(RecordingReader::open(path).sample_count(), 2);
}

TEST(StoreRoundTrip, CommitIfDueWaitsASecondAndNeedsPendingWrites) {
  TempDir dir;
  const std::string path = dir.file("due.memdx");
  RecordingWriter writer = RecordingWriter::create(path, typical_meta());
  const auto start = RecordingWriter::Clock::now();
  EXPECT_FALSE(writer.commit_if_due(start + std::chrono::seconds(5)));  // nothing pending

  writer.add_samples(std::vector<model::ProcessSample>{full_sample(1, 0)});
  writer.commit();
  const auto committed = RecordingWriter::Clock::now();
  writer.add_samples(std::vector<model::ProcessSample>{full_sample(1, 200)});
  EXPECT_FALSE(writer.commit_if_due(committed - std::chrono::milliseconds(1)));
  EXPECT_EQ(RecordingReader::open(path).sample_count(), 1);
  EXPECT_TRUE(writer.commit_if_due(committed + std::chrono::milliseconds(1000)));
  EXPECT_EQ(RecordingReader::open(path).sample_count(), 2);
  EXPECT_FALSE(writer.commit_if_due(committed + std::chrono::milliseconds(1500)));
}

TEST(StoreRoundTrip, CloseFoldsTheWalIntoTheFile) {
  TempDir dir;
  const std::string path = dir.file("closed.memdx");
  RecordingWriter writer = RecordingWriter::create(path, typical_meta());
  writer.add_samples(std::vector<model::ProcessSample>{full_sample(1, 0)});
  writer.close();
  writer.close();  // idempotent
  EXPECT_FALSE(std::filesystem::exists(path + "-wal"));
  EXPECT_THROW(writer.add_samples(std::vector<model::ProcessSample>{full_sample(1, 200)}), StoreError);
  EXPECT_EQ(RecordingReader::open(path).sample_count(), 1);
  EXPECT_FALSE(std::filesystem::exists(path + "-wal")) << "a reader left a WAL beside a finished recording";
  EXPECT_FALSE(std::filesystem::exists(path + "-shm"));
}

TEST(StoreRoundTrip, DestructorCommitsWhatIsPending) {
  TempDir dir;
  const std::string path = dir.file("dtor.memdx");
  {
    RecordingWriter writer = RecordingWriter::create(path, typical_meta());
    writer.add_samples(std::vector<model::ProcessSample>{full_sample(1, 0)});
    RecordingWriter moved = std::move(writer);
  }
  EXPECT_EQ(RecordingReader::open(path).sample_count(), 1);
}

TEST(StoreCreate, RefusesToOverwriteARecordingUnlessAsked) {
  TempDir dir;
  const std::string path = dir.file("existing.memdx");
  {
    RecordingWriter writer = RecordingWriter::create(path, typical_meta());
    writer.add_samples(std::vector<model::ProcessSample>{full_sample(1, 0)});
  }
  try {
    RecordingWriter::create(path, typical_meta());
    FAIL() << "an existing recording was overwritten";
  } catch (const StoreError& e) {
    EXPECT_EQ(std::string(e.what()), "recording " + path + " already exists; not overwriting it");
  }
  EXPECT_EQ(RecordingReader::open(path).sample_count(), 1);

  RecordingWriter::create(path, typical_meta(), /*overwrite=*/true).close();
  EXPECT_EQ(RecordingReader::open(path).sample_count(), 0);
}

TEST(StoreCreate, AcceptsAnEmptyExistingFile) {
  TempDir dir;
  const std::string path = dir.file("empty.memdx");
  std::ofstream(path).close();  // e.g. made by mktemp
  RecordingWriter::create(path, typical_meta()).close();
  EXPECT_EQ(RecordingReader::open(path).meta().host, typical_meta().host);
}

}  // namespace
}  // namespace memdx::store
