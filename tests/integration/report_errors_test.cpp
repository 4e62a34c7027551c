// memdx report on files it cannot use: a recording cut short on disk, a recording whose heap
// trace chunks were damaged, and files that are no recording at all. Each ends with exit code 1
// and one line on stderr that starts with "memdx:" and names the file: never a crash, a
// sanitizer report, an uncaught exception, or a half-printed report.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "integration/harness.h"
#include "trace/format/chunk.h"
#include "trace/format/wire.h"

namespace memdx::test {
namespace {
namespace fs = std::filesystem;
namespace wire = trace::wire;

// The sqlite3 shell (a test package): edits the chunks of a recording in place.
std::string sqlite3_path() {
  for (const char* candidate : {"/usr/bin/sqlite3", "/usr/local/bin/sqlite3", "/bin/sqlite3"}) {
    if (::access(candidate, X_OK) == 0) return candidate;
  }
  return {};
}

// What every failing `memdx report` must look like.
void expect_one_line_failure(const CommandResult& r, const std::string& file, const std::string& fragment = {}) {
  EXPECT_EQ(r.signal, 0) << file << " killed memdx by signal " << r.signal << ": " << r.err;
  EXPECT_EQ(r.exit_code, 1) << file << ": " << r.err;
  EXPECT_EQ(line_count(r.err), 1u) << file << ": " << r.err;
  EXPECT_EQ(r.err.rfind("memdx: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(file), std::string::npos) << "the error does not name " << file << ": " << r.err;
  if (!fragment.empty()) {
    EXPECT_NE(r.err.find(fragment), std::string::npos) << r.err;
  }
  for (const char* crash : {"terminate called", "Sanitizer", "runtime error", "internal error"}) {
    EXPECT_EQ(r.err.find(crash), std::string::npos) << r.err;
  }
  EXPECT_TRUE(r.out.empty()) << "stdout: " << r.out;
}

// A zstd frame that decompresses to `content` (up to 128 KiB): a header with a four-byte
// content size, then one raw block, as SQL blob literal text.
std::string zstd_frame_literal(const std::vector<uint8_t>& content) {
  std::vector<uint8_t> frame = {0x28, 0xb5, 0x2f, 0xfd, 0xa0};  // magic; single segment, 4-byte size
  for (int i = 0; i < 4; ++i) frame.push_back(static_cast<uint8_t>(content.size() >> (8 * i)));
  uint32_t block_header = 1u | static_cast<uint32_t>(content.size()) << 3;  // last block, raw
  for (int i = 0; i < 3; ++i) frame.push_back(static_cast<uint8_t>(block_header >> (8 * i)));
  frame.insert(frame.end(), content.begin(), content.end());
  std::string literal = "X'";
  for (uint8_t byte : frame) {
    const char* digits = "0123456789abcdef";
    literal += digits[byte >> 4];
    literal += digits[byte & 15];
  }
  return literal + "'";
}

// Builds one stream of the tracer's wire format (trace/format/wire.h) by hand, and the chunk
// that carries it: values no real process sends, in records that are all well formed.
class StreamBuilder {
 public:
  explicit StreamBuilder(const wire::StreamHello& hello) { append(&hello, sizeof(hello)); }

  StreamBuilder& process_batch(const std::vector<uint8_t>& records) {
    return batch(wire::BatchKind::kProcess, records);
  }
  StreamBuilder& thread_start_batch(const std::vector<uint8_t>& records) {
    return batch(wire::BatchKind::kThreadStart, records);
  }

  // Frames of stream 1, then its close.
  std::vector<uint8_t> chunk() const {
    std::vector<uint8_t> out;
    auto frame = [&](uint32_t bytes) {
      trace::ChunkFrameHeader header{1, bytes};
      const auto* raw = reinterpret_cast<const uint8_t*>(&header);
      out.insert(out.end(), raw, raw + sizeof(header));
    };
    frame(static_cast<uint32_t>(bytes_.size()));
    out.insert(out.end(), bytes_.begin(), bytes_.end());
    frame(0);
    return out;
  }

 private:
  StreamBuilder& batch(wire::BatchKind kind, const std::vector<uint8_t>& records) {
    wire::BatchHeader header{wire::kBatchMagic, static_cast<uint32_t>(kind), 1234,
                             static_cast<uint32_t>(records.size())};
    append(&header, sizeof(header));
    bytes_.insert(bytes_.end(), records.begin(), records.end());
    return *this;
  }
  void append(const void* data, size_t size) {
    const auto* raw = static_cast<const uint8_t*>(data);
    bytes_.insert(bytes_.end(), raw, raw + size);
  }

  std::vector<uint8_t> bytes_;
};

// Records: a tag, then varints ("u" unsigned, "s" signed) and raw bytes.
class Records {
 public:
  Records& tag(wire::Tag tag) {
    bytes_.push_back(static_cast<uint8_t>(tag));
    return *this;
  }
  Records& u(uint64_t value) {
    uint8_t buffer[wire::kMaxVarintBytes];
    bytes_.insert(bytes_.end(), buffer, wire::put_u64(buffer, value));
    return *this;
  }
  Records& s(int64_t value) { return u(wire::zigzag(value)); }
  Records& text(const std::string& value) {
    u(value.size());
    bytes_.insert(bytes_.end(), value.begin(), value.end());
    return *this;
  }
  const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

wire::StreamHello hello(uint64_t start_monotonic_ns, uint64_t sample_bytes) {
  wire::StreamHello hello{};
  std::memcpy(hello.magic, wire::kStreamMagic, sizeof(hello.magic));
  hello.version = wire::kVersion;
  hello.hello_bytes = sizeof(hello);
  hello.pid = 4242;
  hello.ppid = 1;
  hello.start_monotonic_ns = start_monotonic_ns;
  hello.sample_bytes = sample_bytes;
  hello.max_depth = wire::kDefaultMaxDepth;
  return hello;
}

// A process that maps one module at [start, start + 1 MiB) and allocates `bytes` from a stack in
// it, then ends.
std::vector<uint8_t> one_allocation_chunk(const std::string& module_path, uint64_t start, uint64_t bytes) {
  Records modules;
  modules.tag(wire::Tag::kModule).u(1).u(start).u(start).u(start + (1u << 20)).text(module_path);
  Records events;
  events.tag(wire::Tag::kStack).u(1).u(1).u(start + 0x1234);
  events.tag(wire::Tag::kAlloc).u(2).s(0x10000).u(bytes).u(1);
  Records end;
  end.tag(wire::Tag::kEnd).u(3).u(1000).u(static_cast<uint64_t>(wire::EndReason::kExit)).s(0);
  return StreamBuilder(hello(1000, 0))
      .process_batch(modules.bytes())
      .thread_start_batch(events.bytes())
      .process_batch(end.bytes())
      .chunk();
}

class ReportErrors : public ::testing::Test {
 protected:
  // One real recording for the suite: `memdx trace` of a program that keeps heap blocks.
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("memdx-report-errors-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    traced_ = (dir_ / "traced.memdx").string();
    trace_result_ = run_memdx({"trace", "-o", traced_, "--", helper_path("behave"), "heap", "1"});
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  void SetUp() override {
    ASSERT_EQ(trace_result_.exit_code, 0) << trace_result_.err;
    ASSERT_TRUE(fs::exists(traced_));
  }

  // A fresh copy of the real recording.
  static std::string copy(const std::string& name) {
    std::string path = (dir_ / name).string();
    fs::copy_file(traced_, path, fs::copy_options::overwrite_existing);
    return path;
  }

  // Throws (failing the test) when the statement fails: the case would test nothing.
  static void sql(const std::string& recording, const std::string& statement) {
    std::string shell = sqlite3_path();
    if (shell.empty()) throw std::runtime_error("the sqlite3 shell is not installed (apt-get install sqlite3)");
    CommandResult r = run_command({shell, recording, statement});
    if (r.exit_code != 0) throw std::runtime_error("sqlite3 " + statement + ": " + r.err);
  }

  // The recording with its first heap-trace chunk's data replaced by the SQL expression `data`
  // (which may refer to the old value as `data`).
  static std::string with_first_chunk(const std::string& name, const std::string& data) {
    std::string path = copy(name);
    sql(path, "UPDATE trace_chunks SET data = " + data +
                  " WHERE id = (SELECT min(id) FROM trace_chunks WHERE kind = 'memdx.heap/1')");
    return path;
  }

  // The recording with its heap trace replaced by one chunk holding `content`.
  static std::string with_trace(const std::string& name, const std::vector<uint8_t>& content) {
    std::string path = with_first_chunk(name, zstd_frame_literal(content));
    sql(path, "DELETE FROM trace_chunks WHERE id > (SELECT min(id) FROM trace_chunks)");
    return path;
  }

  // memdx report, stopped after `limit_s` seconds (exit code kTimedOut): a hang fails the test
  // instead of stalling it.
  static CommandResult report_within(const std::string& path, int limit_s = 60) {
    return run_command({"/usr/bin/timeout", "--kill-after=5", std::to_string(limit_s), memdx_path(), "report", path});
  }
  static constexpr int kTimedOut = 124;  // timeout(1)'s

  static inline fs::path dir_;
  static inline std::string traced_;
  static inline CommandResult trace_result_;
};

TEST_F(ReportErrors, TheIntactRecordingReports) {
  CommandResult r = run_memdx({"report", traced_});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(r.out.empty());
}

TEST_F(ReportErrors, ARecordingCutShortOnDiskFailsWithOneLine) {
  std::string cut = copy("cut.memdx");
  fs::resize_file(cut, fs::file_size(cut) / 2);
  expect_one_line_failure(run_memdx({"report", cut}), cut);
}

TEST_F(ReportErrors, AChunkThatIsNoZstdFrameFailsWithOneLine) {
  std::string path = with_first_chunk("magic.memdx", "X'00000000' || substr(data, 5)");
  expect_one_line_failure(run_memdx({"report", path}), path, "heap trace chunk");
  std::string empty = with_first_chunk("empty-chunk.memdx", "X''");
  expect_one_line_failure(run_memdx({"report", empty}), empty, "heap trace chunk");
}

TEST_F(ReportErrors, AChunkCutShortFailsWithOneLine) {
  std::string path = with_first_chunk("half-chunk.memdx", "substr(data, 1, length(data) / 2)");
  expect_one_line_failure(run_memdx({"report", path}), path, "heap trace chunk");
}

TEST_F(ReportErrors, AChunkWithAForeignStreamFailsWithOneLine) {
  // A well-formed chunk whose stream 1 starts with text instead of the tracer's header.
  std::string text = "this is not what memdx's tracer writes, not at all";
  std::vector<uint8_t> content = {1, 0, 0, 0, static_cast<uint8_t>(text.size()), 0, 0, 0};
  content.insert(content.end(), text.begin(), text.end());
  std::string path = with_first_chunk("foreign-stream.memdx", zstd_frame_literal(content));
  expect_one_line_failure(run_memdx({"report", path}), path, "heap trace stream 1");

  // Frames that run past the end of their chunk.
  std::vector<uint8_t> overlong = {1, 0, 0, 0, 0xff, 0xff, 0, 0, 'x'};
  std::string cut = with_first_chunk("overlong-frame.memdx", zstd_frame_literal(overlong));
  expect_one_line_failure(run_memdx({"report", cut}), cut, "cut short");
}

// Damage anywhere in a chunk: without a checksum zstd may decode it into other bytes, which the
// reader may even accept, so a report is allowed; a crash or a many-line error is not.
TEST_F(ReportErrors, BytesOverwrittenAnywhereInAChunkNeverCrashMemdx) {
  for (int part = 1; part < 8; ++part) {
    std::string name = "overwritten-" + std::to_string(part) + ".memdx";
    std::string at = "length(data) * " + std::to_string(part) + " / 8";
    std::string path =
        with_first_chunk(name, "substr(data, 1, " + at + ") || X'a5a5a5a5a5a5a5a5' || substr(data, " + at + " + 9)");
    CommandResult r = run_memdx({"report", path});
    EXPECT_EQ(r.signal, 0) << name << ": " << r.err;
    if (r.exit_code == 0) {
      for (const char* crash : {"Sanitizer", "runtime error", "terminate called"}) {
        EXPECT_EQ(r.err.find(crash), std::string::npos) << name << ": " << r.err;
      }
    } else {
      expect_one_line_failure(r, path);
    }
  }
}

TEST_F(ReportErrors, AHandMadeTraceReports) {
  // The builder itself is right: what the next tests bend is otherwise a valid trace.
  std::string path =
      with_trace("hand-made.memdx", one_allocation_chunk("/nonexistent/libhand.so", 0x7f0000000000, 100));
  CommandResult r = report_within(path);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("4242"), std::string::npos) << r.out;
}

// Well-formed records with values no process sends: sizes near 2^64, a clock at its end,
// sampling at one byte, mappings that wrap around the address space. A report or one line.
TEST_F(ReportErrors, AbsurdValuesInAWellFormedTraceReportOrFailWithOneLine) {
  const uint64_t top = ~uint64_t{0};
  Records process;
  process.tag(wire::Tag::kModule).u(1).u(0).u(0).u(top).text("/nonexistent/everything.so");
  process.tag(wire::Tag::kMarker).u(5).u(top).u(top).u(top);
  process.tag(wire::Tag::kNote).u(77);
  Records thread;
  thread.tag(wire::Tag::kStack).u(top >> 32).u(2).u(top).s(-1);
  thread.tag(wire::Tag::kAlloc).u(1).s(-4096).u(top).u(top >> 32);
  thread.tag(wire::Tag::kAlloc).u(top - 10).s(1).u(top / 2).u(7);
  thread.tag(wire::Tag::kMmap).u(1).s(static_cast<int64_t>(top - 4095)).u(top).u(0xffffffff).u(3);
  thread.tag(wire::Tag::kMunmap).u(1).s(0).u(top);
  thread.tag(wire::Tag::kFree).u(0).s(1);
  thread.tag(wire::Tag::kFreeRecent).u(0).u(1);
  Records end;
  end.tag(wire::Tag::kUnmodule).u(top).u(0);
  end.tag(wire::Tag::kEnd).u(top).u(top).u(99).s(std::numeric_limits<int64_t>::min());
  for (uint64_t sample_bytes : {uint64_t{0}, uint64_t{1}, top}) {
    std::string name = "absurd-" + std::to_string(sample_bytes) + ".memdx";
    std::string path = with_trace(name, StreamBuilder(hello(top - 1, sample_bytes))
                                            .process_batch(process.bytes())
                                            .thread_start_batch(thread.bytes())
                                            .process_batch(end.bytes())
                                            .chunk());
    CommandResult r = report_within(path);
    EXPECT_NE(r.exit_code, kTimedOut) << name << " did not finish within a minute";
    if (r.exit_code == 0) {
      for (const char* crash : {"Sanitizer", "runtime error", "terminate called"}) {
        EXPECT_EQ(r.err.find(crash), std::string::npos) << name << ": " << r.err;
      }
    } else {
      expect_one_line_failure(r, path);
    }
  }
}

// Disabled until symbolize.cpp opens only regular files: libdwfl opens a module's path as the
// trace names it, and open() of a FIFO waits for a writer forever.
TEST_F(ReportErrors, AModuleThatIsAFifoDoesNotHangTheReport) {
  std::string fifo = (dir_ / "module.fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string path = with_trace("fifo-module.memdx", one_allocation_chunk(fifo, 0x7f0000000000, 100));
  CommandResult r = report_within(path, 20);
  EXPECT_NE(r.exit_code, kTimedOut) << "memdx report hung opening " << fifo;
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(ReportErrors, FilesThatAreNoRecordingFailWithOneLine) {
  std::string png = (dir_ / "picture.png").string();
  {
    std::ofstream out(png, std::ios::binary);
    out << "\x89PNG\r\n\x1a\n";
    std::mt19937 random(42);
    for (int i = 0; i < 4096; ++i) out.put(static_cast<char>(random()));
  }
  std::string text = (dir_ / "notes.txt").string();
  std::ofstream(text) << "hello, world\nthis is not a recording\n";
  std::string empty = (dir_ / "empty.memdx").string();
  std::ofstream{empty};
  std::string directory = (dir_ / "a-directory.memdx").string();
  fs::create_directories(directory);
  std::string other_database = (dir_ / "other.sqlite").string();
  sql(other_database, "CREATE TABLE things (name TEXT); INSERT INTO things VALUES ('x');");
  std::string missing = (dir_ / "missing.memdx").string();

  for (const std::string& file : {png, text, empty, directory, other_database, missing}) {
    expect_one_line_failure(run_memdx({"report", file}), file);
  }
}

}  // namespace
}  // namespace memdx::test
