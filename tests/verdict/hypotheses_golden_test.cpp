// The hypotheses table of memdx.verdict/1 for one fixed recording, written with RecordingWriter,
// read back and diagnosed through diagnose(RecordingReader&), compared byte for byte with
// golden/hypotheses.json. MEMDX_UPDATE_GOLDEN=1 rewrites the golden file instead of comparing.
//
// The fixture: a root that leaks fds (2 a second) over a flat traced heap, a child leaking anon
// memory without a heap trace (1.5 MiB/s) in a 4 GiB cgroup, and a short-lived `sh -c true`.
// Every value is computed from integers here: nothing depends on the machine or on a random
// number library's distribution.
#include <gtest/gtest.h>

#include <memory>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "analyze/diagnose.h"
#include "model/verdict.h"
#include "store/recording_reader.h"
#include "store/recording_writer.h"
#include "store/store_test_util.h"

namespace memdx {
namespace {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
constexpr uint64_t kGiB = 1024 * kMiB;
constexpr int64_t kIntervalMs = 200;
constexpr int64_t kEndMs = 20000;

constexpr pid_t kRoot = 100;
constexpr pid_t kWorker = 101;
constexpr pid_t kShell = 102;

const std::string kGoldenPath = std::string(MEMDX_GOLDEN_DIR) + "/hypotheses.json";

// A fixed wobble of -160..+160 KiB, different per series (`seed`), whole KiB so that the store
// keeps it exactly.
uint64_t wobble(int64_t tick, int seed, uint64_t base) {
  auto step = static_cast<int64_t>((tick * 7 + seed * 3) % 11) - 5;
  return static_cast<uint64_t>(static_cast<int64_t>(base) + step * 32 * static_cast<int64_t>(kKiB));
}

model::RecordingMeta fixture_meta() {
  model::RecordingMeta meta;
  meta.command = {"./server", "--workers", "2"};
  meta.kind = "run";
  meta.started_at_utc = "2026-01-02T03:04:05Z";
  meta.started_at_unix_ms = 1767323045000;
  meta.host = "golden";
  meta.kernel = "6.1.0-golden";
  meta.memdx_version = "0.0.0-golden";
  meta.interval_ms = kIntervalMs;
  meta.cgroup_max_bytes = 4 * kGiB;
  meta.mem_total_bytes = 16 * kGiB;
  return meta;
}

model::ProcessSample sample(pid_t pid, int64_t t_ms, uint64_t anon, uint64_t file, uint64_t shmem, uint64_t vsz) {
  model::ProcessSample s;
  s.t_ms = t_ms;
  s.pid = pid;
  s.rss_anon_bytes = anon;
  s.rss_file_bytes = file;
  s.rss_shmem_bytes = shmem;
  s.rss_bytes = anon + file + shmem;
  s.pss_bytes = s.rss_bytes - file / 2;
  s.vsz_bytes = vsz;
  return s;
}

// Flat memory, a flat traced heap, fds rising 2 a second from 8.
std::vector<model::ProcessSample> root_samples() {
  std::vector<model::ProcessSample> samples;
  for (int64_t t_ms = 0; t_ms <= kEndMs; t_ms += kIntervalMs) {
    int64_t tick = t_ms / kIntervalMs;
    model::ProcessSample s =
        sample(kRoot, t_ms, wobble(tick, 1, 40 * kMiB), wobble(tick, 2, 12 * kMiB), 2 * kMiB, 640 * kMiB);
    s.fds = static_cast<uint32_t>(8 + 2 * t_ms / 1000);
    s.threads = 6;
    s.heap_live_bytes = wobble(tick, 3, 28 * kMiB);
    samples.push_back(s);
  }
  return samples;
}

// Anon rising 1.5 MiB a second from 4 MiB, untraced; VSZ rising with it.
std::vector<model::ProcessSample> worker_samples() {
  std::vector<model::ProcessSample> samples;
  for (int64_t t_ms = 400; t_ms <= kEndMs; t_ms += kIntervalMs) {
    int64_t tick = t_ms / kIntervalMs;
    uint64_t anon = wobble(tick, 4, 4 * kMiB + static_cast<uint64_t>(1536 * (t_ms - 400) / 1000) * kKiB);
    model::ProcessSample s = sample(kWorker, t_ms, anon, 6 * kMiB, 0, 180 * kMiB + anon);
    s.fds = 5;
    s.threads = 2;
    samples.push_back(s);
  }
  return samples;
}

std::vector<model::ProcessSample> shell_samples() {
  std::vector<model::ProcessSample> samples;
  for (int64_t t_ms = 1000; t_ms <= 1800; t_ms += kIntervalMs) {
    model::ProcessSample s = sample(kShell, t_ms, 1 * kMiB, 2 * kMiB, 0, 8 * kMiB);
    s.fds = 3;
    s.threads = 1;
    samples.push_back(s);
  }
  return samples;
}

// The cgroup's usage follows the worker's growth from 900 MiB.
void add_system_samples(store::RecordingWriter& writer) {
  for (int64_t t_ms = 0; t_ms <= kEndMs; t_ms += 1000) {
    model::SystemSample s = testing::system_sample(t_ms, 12 * kGiB, 2 * kGiB);
    s.cgroup_current_bytes = 900 * kMiB + static_cast<uint64_t>(1536 * t_ms / 1000) * kKiB;
    s.psi_some_avg10 = 0.0;
    writer.add_system_sample(s);
  }
}

void write_fixture(const std::string& path) {
  store::RecordingWriter writer = store::RecordingWriter::create(path, fixture_meta());
  writer.put_meta("root_pid", int64_t{kRoot});
  writer.add_process(testing::process_record(kRoot, 1, {"./server", "--workers", "2"}, 0));
  writer.add_process(testing::process_record(kWorker, kRoot, {"./worker", "--id", "1"}, 400));
  writer.add_process(testing::process_record(kShell, kRoot, {"sh", "-c", "true"}, 1000));
  writer.add_samples(root_samples());
  writer.add_samples(worker_samples());
  writer.add_samples(shell_samples());
  add_system_samples(writer);
  ASSERT_TRUE(writer.mark_exited(kShell, 1900, 0, std::nullopt));
  ASSERT_TRUE(writer.mark_exited(kWorker, kEndMs + 100, std::nullopt, 9));
  ASSERT_TRUE(writer.mark_exited(kRoot, kEndMs + 100, 0, std::nullopt));
  writer.close();
}

model::Verdict fixture_verdict() {
  testing::TempDir dir;
  const std::string path = dir.file("golden.memdx");
  write_fixture(path);
  store::RecordingReader reader = store::RecordingReader::open(path);
  return analyze::diagnose(reader);
}

std::string hypotheses_json(const model::Verdict& verdict) {
  return model::to_json(verdict)["hypotheses"].dump(2) + "\n";
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// A line diff of `expected` against `actual` (longest common subsequence): "-" lines only in the
// golden file, "+" lines only in the actual output, each with its line number in that file.
std::string line_diff(const std::vector<std::string>& expected, const std::vector<std::string>& actual) {
  size_t n = expected.size(), m = actual.size();
  std::vector<std::vector<size_t>> common(n + 1, std::vector<size_t>(m + 1, 0));
  for (size_t i = n; i-- > 0;) {
    for (size_t j = m; j-- > 0;) {
      common[i][j] = expected[i] == actual[j] ? common[i + 1][j + 1] + 1 : std::max(common[i + 1][j], common[i][j + 1]);
    }
  }
  std::string out = "--- " + kGoldenPath + "\n+++ actual\n";
  size_t i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && expected[i] == actual[j]) {
      ++i, ++j;
    } else if (j < m && (i == n || common[i][j + 1] >= common[i + 1][j])) {
      out += "+" + std::to_string(j + 1) + ": " + actual[j] + "\n";
      ++j;
    } else {
      out += "-" + std::to_string(i + 1) + ": " + expected[i] + "\n";
      ++i;
    }
  }
  return out;
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

bool updating() {
  const char* update = std::getenv("MEMDX_UPDATE_GOLDEN");
  return update && std::string(update) == "1";
}

TEST(HypothesesGolden, TableMatchesTheGoldenFile) {
  std::string actual = hypotheses_json(fixture_verdict());
  if (updating()) {
    std::ofstream(kGoldenPath, std::ios::binary | std::ios::trunc) << actual;
    std::printf("MEMDX_UPDATE_GOLDEN=1: rewrote %s\n", kGoldenPath.c_str());
    return;
  }
  std::optional<std::string> expected = read_file(kGoldenPath);
  ASSERT_TRUE(expected) << "cannot read " << kGoldenPath << "; run with MEMDX_UPDATE_GOLDEN=1 to create it";
  EXPECT_TRUE(*expected == actual) << "the hypotheses table differs from the golden file "
                                      "(if the change is intended, rerun with MEMDX_UPDATE_GOLDEN=1):\n"
                                   << line_diff(lines_of(*expected), lines_of(actual));
}

// The fixture is what the golden file describes: the load path sees the three processes and the
// root named in the meta, and a second recording gives the same table (nothing depends on the
// clock or the machine).
TEST(HypothesesGolden, FixtureLoadsAndIsDeterministic) {
  model::Verdict verdict = fixture_verdict();
  EXPECT_EQ(verdict.target.pid, kRoot);
  EXPECT_EQ(verdict.processes.size(), 3u);
  EXPECT_EQ(hypotheses_json(verdict), hypotheses_json(fixture_verdict()));
}

// memdx report reads samples one process at a time (open_recording); the verdict must be the one
// of the recording held whole (load_recording), and nothing may be held in memory.
TEST(HypothesesGolden, ReadingOneProcessAtATimeGivesTheSameVerdict) {
  testing::TempDir dir;
  const std::string path = dir.file("golden.memdx");
  write_fixture(path);
  auto reader = std::make_shared<const store::RecordingReader>(store::RecordingReader::open(path));
  analyze::RecordingData lazy = analyze::open_recording(reader);
  EXPECT_TRUE(lazy.samples.empty());
  std::vector<model::ProcessSample> scratch;
  EXPECT_FALSE(lazy.samples_of(kRoot, scratch).empty());
  EXPECT_EQ(model::to_json(analyze::diagnose(lazy)).dump(2),
            model::to_json(analyze::diagnose(analyze::load_recording(*reader))).dump(2));
}

}  // namespace
}  // namespace memdx
