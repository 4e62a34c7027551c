// The tracer's per-thread event logs, compiled into the test from the tracer's own sources with
// its stream to the collector: the stream connects to a listening socket of the test's own (the
// tracer checks that the listener is the collector memdx named: here, this process), and a reader
// thread decodes what arrives as memdx's collector does. The tests append records of their own
// (a writer, a running number and filler that follows from the number) with reserve, write_cursor
// and commit as the tracer's record_* do, and check that each committed record arrives exactly
// once, in its thread's order, in whole records, under its thread's id.
//
// The logs and the stream are process-wide, as in a traced program: each test works in threads
// of its own, picks out their batches by thread id, and gives their logs back when it ends.
#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <latch>
#include <mutex>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "trace/format/wire.h"
#include "trace/preload/real.h"
#include "trace/preload/stream.h"
#include "trace/preload/thread_log.h"

namespace memdx::trace {
namespace {

using namespace std::chrono_literals;

struct Batch {
  wire::BatchKind kind;
  pid_t tid;
  std::vector<uint8_t> payload;
};

bool read_exactly(int fd, void* out, size_t bytes) {
  auto* at = static_cast<uint8_t*>(out);
  while (bytes > 0) {
    ssize_t got = ::read(fd, at, bytes);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    at += got;
    bytes -= static_cast<size_t>(got);
  }
  return true;
}

// One batch as the collector reads it; false at the end of the stream or on a header that is
// not a batch's (which fails the test).
bool read_batch(int fd, Batch& batch) {
  wire::BatchHeader header{};
  if (!read_exactly(fd, &header, sizeof(header))) return false;
  if (header.magic != wire::kBatchMagic || header.payload_bytes > wire::kMaxBatchPayloadBytes) {
    ADD_FAILURE() << "not a batch header: magic " << header.magic << ", " << header.payload_bytes << " bytes";
    return false;
  }
  batch.kind = static_cast<wire::BatchKind>(header.kind);
  batch.tid = header.tid;
  batch.payload.resize(header.payload_bytes);
  return read_exactly(fd, batch.payload.data(), batch.payload.size());
}

// The start of every stream: the run's secret, then the hello.
struct Greeting {
  wire::StreamAuth auth{};
  wire::StreamHello hello{};
};

bool read_greeting(int fd, Greeting& greeting) {
  return read_exactly(fd, &greeting.auth, sizeof(greeting.auth)) &&
         read_exactly(fd, &greeting.hello, sizeof(greeting.hello));
}

// A process batch under this tid marks a point in the stream (Collector::received).
constexpr pid_t kSyncTid = -1;

// memdx's collector, as far as the logs need one: a listening socket in this process, the
// tracer's stream opened to it, and a thread that reads the batches as they come (a full socket
// would otherwise stop the senders).
class Collector : public ::testing::Environment {
 public:
  void SetUp() override {
    resolve_real_functions();  // the logs are mapped with the real mmap
    char directory[] = "/tmp/memdx-thread-log-test-XXXXXX";
    ASSERT_NE(::mkdtemp(directory), nullptr);
    directory_ = directory;
    std::string path = directory_ + "/collector.sock";
    listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(listener_, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    ASSERT_LT(path.size(), sizeof(address.sun_path));
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    ASSERT_EQ(::bind(listener_, reinterpret_cast<const sockaddr*>(&address), sizeof(address)), 0);
    ASSERT_EQ(::listen(listener_, 8), 0);
    std::memcpy(target_.socket_path, path.c_str(), path.size() + 1);
    for (size_t i = 0; i < wire::kKeyBytes; ++i) target_.key[i] = static_cast<uint8_t>(0xa0 + i);
    target_.collector_pid = ::getpid();

    ASSERT_TRUE(stream_open(target_, 0, wire::kDefaultMaxDepth, 0));
    connection_ = accept_within(10s);
    ASSERT_GE(connection_, 0);
    Greeting greeting;
    ASSERT_TRUE(read_greeting(connection_, greeting));
    EXPECT_EQ(std::memcmp(greeting.auth.key, target_.key, wire::kKeyBytes), 0);
    EXPECT_EQ(greeting.hello.pid, ::getpid());
    EXPECT_EQ(greeting.hello.flags, 0u);
    reader_ = std::thread([this] { read_all(); });
  }

  void TearDown() override {
    if (connection_ >= 0) ::shutdown(connection_, SHUT_RDWR);
    if (reader_.joinable()) reader_.join();
    if (connection_ >= 0) ::close(connection_);
    if (listener_ >= 0) ::close(listener_);
    ::unlink(target_.socket_path);
    ::rmdir(directory_.c_str());
  }

  const StreamTarget& target() const { return target_; }

  // The next connection to the collector (a forked child's stream), or -1 after `limit`.
  int accept_within(std::chrono::milliseconds limit) const {
    pollfd ready{listener_, POLLIN, 0};
    if (::poll(&ready, 1, static_cast<int>(limit.count())) != 1) return -1;
    int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) {
      timeval read_limit{30, 0};  // a child that never closes its stream fails the test, not hangs it
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &read_limit, sizeof(read_limit));
    }
    return fd;
  }

  // Every batch that arrived since the last call. A marker batch sent now arrives after all the
  // stream carried before it: once the reader has it, nothing sent earlier is still on the way.
  std::vector<Batch> received() {
    uint64_t mark = ++marks_sent_;
    iovec piece{&mark, sizeof(mark)};
    EXPECT_TRUE(stream_send(wire::BatchKind::kProcess, kSyncTid, &piece, 1));
    std::unique_lock lock(mutex_);
    EXPECT_TRUE(arrived_.wait_for(lock, 30s, [&] { return marks_seen_ >= mark || ended_; }));
    EXPECT_GE(marks_seen_, mark) << "the stream ended";
    return std::exchange(batches_, {});
  }

 private:
  void read_all() {
    Batch batch;
    while (read_batch(connection_, batch)) {
      std::lock_guard lock(mutex_);
      if (batch.kind == wire::BatchKind::kProcess && batch.tid == kSyncTid) {
        std::memcpy(&marks_seen_, batch.payload.data(), sizeof(marks_seen_));
        arrived_.notify_all();
      } else {
        batches_.push_back(std::move(batch));
      }
    }
    std::lock_guard lock(mutex_);
    ended_ = true;
    arrived_.notify_all();
  }

  std::string directory_;
  int listener_ = -1;
  int connection_ = -1;
  StreamTarget target_{};
  std::thread reader_;
  uint64_t marks_sent_ = 0;
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::vector<Batch> batches_;  // under mutex_
  uint64_t marks_seen_ = 0;     // under mutex_
  bool ended_ = false;          // under mutex_
};
auto* const collector = static_cast<Collector*>(::testing::AddGlobalTestEnvironment(new Collector));

// ---- The test's records ------------------------------------------------------------------------

struct Record {
  uint16_t writer;
  uint32_t number;
  bool operator==(const Record&) const = default;
};

std::ostream& operator<<(std::ostream& out, const Record& record) {
  return out << "writer " << record.writer << " #" << record.number;
}

constexpr size_t kRecordHeadBytes = 1 + 2 + 4;  // length, writer, number
// 9 to 31 bytes: records do not line up with the end of a buffer.
size_t record_bytes(uint32_t number) {
  return 9 + number % 23;
}
uint8_t filler(uint32_t number, size_t at) {
  return static_cast<uint8_t>(number * 31 + at);
}

uint8_t* put_record(uint8_t* out, uint16_t writer, uint32_t number) {
  size_t bytes = record_bytes(number);
  out[0] = static_cast<uint8_t>(bytes);
  std::memcpy(out + 1, &writer, sizeof(writer));
  std::memcpy(out + 3, &number, sizeof(number));
  for (size_t at = kRecordHeadBytes; at < bytes; ++at) out[at] = filler(number, at);
  return out + bytes;
}

// As the tracer's record_* append: room first, then the record at the cursor, then published.
bool append(ThreadLog& log, uint16_t writer, uint32_t number) {
  if (!reserve(log, record_bytes(number))) return false;
  commit(log, put_record(write_cursor(log), writer, number));
  return true;
}

// The records of one batch, which must be whole records: a batch holds what was committed.
std::vector<Record> decode(const std::vector<uint8_t>& payload) {
  std::vector<Record> out;
  for (size_t at = 0; at < payload.size();) {
    size_t bytes = payload[at];
    Record record{};
    if (bytes < kRecordHeadBytes || at + bytes > payload.size()) {
      ADD_FAILURE() << "a torn record at byte " << at << " of " << payload.size();
      break;
    }
    std::memcpy(&record.writer, &payload[at + 1], sizeof(record.writer));
    std::memcpy(&record.number, &payload[at + 3], sizeof(record.number));
    bool intact = bytes == record_bytes(record.number);
    for (size_t i = kRecordHeadBytes; intact && i < bytes; ++i) intact = payload[at + i] == filler(record.number, i);
    if (!intact) {
      ADD_FAILURE() << "a damaged record at byte " << at << " (" << record << ")";
      break;
    }
    out.push_back(record);
    at += bytes;
  }
  return out;
}

std::vector<Batch> batches_of(const std::vector<Batch>& all, pid_t tid) {
  std::vector<Batch> out;
  for (const Batch& batch : all) {
    if (batch.tid == tid && batch.kind != wire::BatchKind::kProcess) out.push_back(batch);
  }
  return out;
}

// A thread's records across its batches; its stream starts with kThreadStart and goes on with
// kThread (the reader restarts the thread's deltas at each kThreadStart).
std::vector<Record> thread_records(const std::vector<Batch>& batches) {
  std::vector<Record> out;
  for (size_t i = 0; i < batches.size(); ++i) {
    EXPECT_EQ(batches[i].kind, i == 0 ? wire::BatchKind::kThreadStart : wire::BatchKind::kThread) << "batch " << i;
    EXPECT_FALSE(batches[i].payload.empty()) << "batch " << i;
    std::vector<Record> records = decode(batches[i].payload);
    out.insert(out.end(), records.begin(), records.end());
  }
  return out;
}

std::vector<Record> numbered(uint16_t writer, uint32_t from, uint32_t to) {
  std::vector<Record> out;
  for (uint32_t n = from; n < to; ++n) out.push_back({writer, n});
  return out;
}

// Where two record sequences part, or "" when they are equal (not the whole of both, which can
// be hundreds of thousands of records).
std::string difference(const std::vector<Record>& got, const std::vector<Record>& want) {
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  if (i == got.size() && i == want.size()) return "";
  std::ostringstream out;
  out << "got " << got.size() << " records, want " << want.size() << "; at " << i << ": ";
  if (i < got.size()) out << "got " << got[i] << " ";
  if (i < want.size()) out << "want " << want[i];
  return out.str();
}

template <typename Function>
void in_new_thread(Function function) {
  std::thread thread(function);
  thread.join();
}

// ---- Tests -------------------------------------------------------------------------------------

TEST(ThreadLog, CommittedRecordsGoOutOnceInOrderUnderTheThreadsId) {
  pid_t tid = 0;
  in_new_thread([&] {
    tid = ::gettid();
    ThreadLog* log = current_thread_log();
    ASSERT_NE(log, nullptr);
    EXPECT_EQ(current_thread_log(), log);  // one log per thread
    EXPECT_EQ(log->tid, tid);
    for (uint32_t n = 0; n < 100; ++n) ASSERT_TRUE(append(*log, 1, n));
    flush_own(*log);
    flush_own(*log);  // nothing new: no batch
    for (uint32_t n = 100; n < 150; ++n) ASSERT_TRUE(append(*log, 1, n));
    put_record(write_cursor(*log), 1, 150);  // written but never committed: never sent
    release_thread_log(log);                 // the thread exits: the rest goes out
  });
  std::vector<Batch> batches = batches_of(collector->received(), tid);
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[0].kind, wire::BatchKind::kThreadStart);
  EXPECT_EQ(difference(decode(batches[0].payload), numbered(1, 0, 100)), "");
  EXPECT_EQ(batches[1].kind, wire::BatchKind::kThread);
  EXPECT_EQ(difference(decode(batches[1].payload), numbered(1, 100, 150)), "");
  flush_all(true);
  EXPECT_TRUE(batches_of(collector->received(), tid).empty()) << "sent twice";
}

// A record that does not fit sends the buffer first; the thread's records go on in the next batch.
TEST(ThreadLog, AFullBufferIsSentAndFilledAgain) {
  constexpr uint32_t kRecords = 15000;  // about 300 KiB: four buffers and more
  pid_t tid = 0;
  in_new_thread([&] {
    tid = ::gettid();
    ThreadLog* log = current_thread_log();
    ASSERT_NE(log, nullptr);
    for (uint32_t n = 0; n < kRecords; ++n) {
      ASSERT_TRUE(append(*log, 2, n));
      ASSERT_LE(log->committed.load(), kThreadBufferBytes);
    }
    release_thread_log(log);
  });
  std::vector<Batch> batches = batches_of(collector->received(), tid);
  ASSERT_GE(batches.size(), 5u);
  for (size_t i = 0; i < batches.size(); ++i) {
    EXPECT_LE(batches[i].payload.size(), kThreadBufferBytes) << "batch " << i;
    // Sent because the next record (31 bytes at most) did not fit.
    if (i + 1 < batches.size()) {
      EXPECT_GT(batches[i].payload.size() + 31, kThreadBufferBytes) << "batch " << i;
    }
  }
  EXPECT_EQ(difference(thread_records(batches), numbered(2, 0, kRecords)), "");
}

TEST(ThreadLog, ARecordLargerThanTheBufferIsRefused) {
  pid_t tid = 0;
  in_new_thread([&] {
    tid = ::gettid();
    ThreadLog* log = current_thread_log();
    ASSERT_NE(log, nullptr);
    for (uint32_t n = 0; n < 10; ++n) ASSERT_TRUE(append(*log, 3, n));
    uint32_t committed = log->committed.load();
    EXPECT_FALSE(reserve(*log, kThreadBufferBytes + 1));
    EXPECT_EQ(log->committed.load(), committed);     // refused without sending anything
    EXPECT_TRUE(reserve(*log, kThreadBufferBytes));  // fits an empty buffer: the records go first
    EXPECT_EQ(log->committed.load(), 0u);
    release_thread_log(log);
  });
  std::vector<Batch> batches = batches_of(collector->received(), tid);
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(difference(thread_records(batches), numbered(3, 0, 10)), "");
}

// The periodic flush-all (wait false) and the final one (wait true) run while the owners append:
// every record still arrives once, in its thread's order, and the last ones with the final flush.
TEST(ThreadLog, FlushAllSendsEveryThreadsRecordsOnceWhileTheOwnersAppend) {
  constexpr int kWriters = 4;
  constexpr uint32_t kRecords = 60000;
  std::vector<pid_t> tids(kWriters);
  std::vector<ThreadLog*> logs(kWriters);
  std::atomic<int> writing{kWriters};
  std::atomic<uint64_t> flushes{0};
  std::vector<std::thread> flushers;
  for (bool wait : {false, true}) {
    flushers.emplace_back([&, wait] {
      while (writing.load() > 0) {
        flush_all(wait);
        flushes.fetch_add(1);
      }
    });
  }
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      tids[w] = ::gettid();
      logs[w] = current_thread_log();
      for (uint32_t n = 0; logs[w] && n < kRecords; ++n) {
        if (!append(*logs[w], static_cast<uint16_t>(10 + w), n)) {
          ADD_FAILURE() << "writer " << w << " could not append #" << n;
          break;
        }
      }
      writing.fetch_sub(1);
    });
  }
  for (std::thread& thread : writers) thread.join();
  for (std::thread& thread : flushers) thread.join();
  EXPECT_GT(flushes.load(), 0u);
  flush_all(true);  // what was committed after the flushers' last round
  std::vector<Batch> all = collector->received();
  for (int w = 0; w < kWriters; ++w) {
    ASSERT_NE(logs[w], nullptr);
    EXPECT_EQ(
        difference(thread_records(batches_of(all, tids[w])), numbered(static_cast<uint16_t>(10 + w), 0, kRecords)), "")
        << "writer " << w;
    release_thread_log(logs[w]);  // from another thread than the owner's: nothing left to send
  }
  all = collector->received();
  for (int w = 0; w < kWriters; ++w) EXPECT_TRUE(batches_of(all, tids[w]).empty()) << "writer " << w << " sent twice";
}

TEST(ThreadLog, FlushIdleSendsOnlyLogsThatWaitedLongEnough) {
  in_new_thread([&] {
    pid_t tid = ::gettid();
    ThreadLog* log = current_thread_log();
    ASSERT_NE(log, nullptr);
    for (uint32_t n = 0; n < 10; ++n) ASSERT_TRUE(append(*log, 4, n));
    flush_idle(uint64_t{3600} * 1'000'000'000);  // the log started just now, not an hour ago
    EXPECT_TRUE(batches_of(collector->received(), tid).empty());
    flush_idle(0);
    std::vector<Batch> batches = batches_of(collector->received(), tid);
    ASSERT_EQ(batches.size(), 1u);
    EXPECT_EQ(difference(thread_records(batches), numbered(4, 0, 10)), "");
    release_thread_log(log);
    EXPECT_TRUE(batches_of(collector->received(), tid).empty());
  });
}

// Threads come and go: each takes a log another gave back, which starts a stream of its own (no
// bytes, encoder state or stream position of the previous owner's), and no log is mapped anew.
TEST(ThreadLog, AReleasedLogServesTheNextThread) {
  in_new_thread([] { release_thread_log(current_thread_log()); });  // at least one log is free
  const size_t bytes = thread_log_bytes();
  ASSERT_GT(bytes, 0u);
  std::vector<pid_t> tids;
  for (uint16_t i = 0; i < 10; ++i) {
    in_new_thread([&, i] {
      tids.push_back(::gettid());
      ThreadLog* log = current_thread_log();
      ASSERT_NE(log, nullptr);
      EXPECT_EQ(log->tid, ::gettid());
      EXPECT_EQ(log->committed.load(), 0u);
      EXPECT_TRUE(log->first_batch);
      EXPECT_EQ(log->previous_seq, 0u);
      EXPECT_EQ(log->previous_address, 0u);
      EXPECT_EQ(log->alloc_ordinal, 0u);
      EXPECT_EQ(log->recent_address[5], 0u);
      for (uint32_t n = 0; n < 20u + i; ++n) ASSERT_TRUE(append(*log, static_cast<uint16_t>(100 + i), n));
      // What the tracer's encoder leaves in a log, which the next owner must not start from.
      log->previous_seq = 1000;
      log->previous_address = 0x7f0000001000;
      log->alloc_ordinal = 7;
      log->recent_address[5] = 0x7f0000001000;
      release_thread_log(log);
    });
  }
  EXPECT_EQ(thread_log_bytes(), bytes);
  std::vector<Batch> all = collector->received();
  ASSERT_EQ(tids.size(), 10u);
  for (uint16_t i = 0; i < 10; ++i) {
    std::vector<Batch> batches = batches_of(all, tids[i]);
    ASSERT_EQ(batches.size(), 1u) << "thread " << i;
    EXPECT_EQ(difference(thread_records(batches), numbered(static_cast<uint16_t>(100 + i), 0, 20u + i)), "")
        << "thread " << i;
  }
}

// In the forked child (its only thread the forking one), as the tracer's fork handler runs it:
// the forking thread keeps its log and starts a new stream in it; every other log is free. A
// GoogleTest failure cannot leave the child: the result is the bits of the checks that failed.
int child_after_fork(ThreadLog* forker_log, const std::vector<ThreadLog*>& others, const StreamTarget& target) {
  stream_after_fork_child();  // the connection is the parent's
  thread_logs_after_fork_child();
  int failed = 0;
  ThreadLog* log = current_thread_log();
  if (log != forker_log) failed |= 1 << 0;
  if (log->tid != ::getpid()) failed |= 1 << 1;
  if (log->committed.load() != 0 || !log->first_batch) failed |= 1 << 2;  // the parent's records stay the parent's
  for (ThreadLog* other : others) {
    if (other->in_use.load() || other->committed.load() != 0) failed |= 1 << 3;
  }
  // Every log but this thread's is free: as many new threads as there are other logs each take
  // one, and none is mapped anew.
  const size_t bytes = thread_log_bytes();
  const size_t free_logs = bytes / sizeof(ThreadLog) - 1;
  std::vector<ThreadLog*> taken(free_logs);
  std::latch all_taken(static_cast<std::ptrdiff_t>(free_logs));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < free_logs; ++i) {
    threads.emplace_back([&, i] {
      taken[i] = current_thread_log();
      all_taken.arrive_and_wait();  // each holds its log until all have one
    });
  }
  for (std::thread& thread : threads) thread.join();
  if (thread_log_bytes() != bytes) failed |= 1 << 4;
  std::set<ThreadLog*> distinct(taken.begin(), taken.end());
  if (distinct.size() != free_logs || distinct.contains(log) || distinct.contains(nullptr)) failed |= 1 << 5;
  for (ThreadLog* other : taken) release_thread_log(other);
  // The child's own stream carries the child's records only.
  if (!stream_open(target, 0, wire::kDefaultMaxDepth, wire::kHelloAfterFork)) failed |= 1 << 6;
  for (uint32_t n = 0; n < 3; ++n) {
    if (!append(*log, 220, n)) failed |= 1 << 7;
  }
  flush_all(true);
  return failed;
}

TEST(ThreadLog, AForkedChildKeepsOnlyTheForkingThreadsLog) {
  // Two threads leave records they have not sent yet.
  std::vector<ThreadLog*> others(2);
  std::vector<pid_t> other_tids(2);
  for (size_t i = 0; i < others.size(); ++i) {
    in_new_thread([&, i] {
      other_tids[i] = ::gettid();
      others[i] = current_thread_log();
      ASSERT_NE(others[i], nullptr);
      for (uint32_t n = 0; n < 5; ++n) ASSERT_TRUE(append(*others[i], static_cast<uint16_t>(200 + i), n));
    });
  }
  ASSERT_NE(others[0], nullptr);
  ASSERT_NE(others[1], nullptr);
  pid_t forker_tid = 0;
  ThreadLog* forker_log = nullptr;
  pid_t child = -1;
  in_new_thread([&] {
    forker_tid = ::gettid();
    forker_log = current_thread_log();
    ASSERT_NE(forker_log, nullptr);
    for (uint32_t n = 0; n < 5; ++n) ASSERT_TRUE(append(*forker_log, 210, n));
    stream_lock_for_fork();  // as the tracer's prepare handler: no batch is cut by the fork
    child = ::fork();
    if (child == 0) ::_exit(child_after_fork(forker_log, others, collector->target()));
    stream_unlock_after_fork_parent();
  });
  ASSERT_GT(child, 0);

  int connection = collector->accept_within(30s);
  Greeting greeting;
  std::vector<Batch> child_batches;
  if (connection >= 0) {
    EXPECT_TRUE(read_greeting(connection, greeting));
    Batch batch;
    while (read_batch(connection, batch)) child_batches.push_back(batch);
    ::close(connection);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "bits of the child's failed checks";
  ASSERT_GE(connection, 0) << "the child opened no stream";
  EXPECT_EQ(greeting.hello.pid, child);
  EXPECT_EQ(greeting.hello.ppid, ::getpid());
  EXPECT_EQ(greeting.hello.flags, wire::kHelloAfterFork);
  ASSERT_EQ(child_batches.size(), 1u);
  EXPECT_EQ(child_batches[0].tid, child);
  EXPECT_EQ(difference(thread_records(child_batches), numbered(220, 0, 3)), "");

  // The parent's logs are as they were: their records go out once, on the parent's stream.
  release_thread_log(forker_log);
  for (ThreadLog* other : others) release_thread_log(other);
  std::vector<Batch> all = collector->received();
  EXPECT_EQ(difference(thread_records(batches_of(all, forker_tid)), numbered(210, 0, 5)), "");
  for (size_t i = 0; i < others.size(); ++i) {
    EXPECT_EQ(
        difference(thread_records(batches_of(all, other_tids[i])), numbered(static_cast<uint16_t>(200 + i), 0, 5)), "");
  }
}

}  // namespace
}  // namespace memdx::trace
