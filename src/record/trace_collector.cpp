#include "record/trace_collector.h"

#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <zstd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "trace/format/chunk.h"

namespace memdx::record {
namespace {

using Clock = std::chrono::steady_clock;

// A chunk is compressed when this much has arrived, or a second after its first byte, so that
// a recording cut short by a crash of memdx loses at most about a second.
constexpr size_t kChunkRawBytes = 8 << 20;
constexpr auto kChunkAge = std::chrono::seconds(1);
constexpr size_t kReadBytes = 256 << 10;
constexpr size_t kRawCapacity = kChunkRawBytes + sizeof(trace::ChunkFrameHeader) + kReadBytes;
// zstd's fastest levels keep up with a busy target on one core; the higher ones do not.
constexpr int kZstdLevel = 1;
// After finish(): how long a quiet, still-open connection is waited for at most.
constexpr auto kQuietStream = std::chrono::milliseconds(500);

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

std::string random_socket_name() {
  std::random_device device;
  return fmt::format("memdx-{}-{:08x}{:08x}", ::getpid(), device(), device());
}

Fd listen_abstract(const std::string& name) {
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd.get() < 0) throw std::runtime_error(fmt::format("cannot create the tracer's socket: {}", std::strerror(errno)));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path + 1, name.data(), name.size());
  auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), length) != 0 || ::listen(fd.get(), 128) != 0) {
    throw std::runtime_error(fmt::format("cannot listen for the tracer: {}", std::strerror(errno)));
  }
  return fd;
}

// Only processes of the same user (or root) may feed the recording.
bool same_user(int fd) {
  ucred peer{};
  socklen_t length = sizeof(peer);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &length) != 0) return false;
  return peer.uid == ::getuid() || peer.uid == 0 || ::getuid() == 0;
}

}  // namespace

struct TraceCollector::State {
  std::string name;
  Fd listener;
  Fd wake;  // eventfd: finish() was called
  std::thread thread;
  Clock::time_point started = Clock::now();

  // Reading thread only.
  std::map<int, std::pair<Fd, uint32_t>> streams;  // fd -> (fd, stream number)
  uint32_t next_stream = 1;
  // The chunk being filled; never zero-filled (a resize of a vector would clear each read's room).
  std::unique_ptr<std::byte[]> raw = std::make_unique_for_overwrite<std::byte[]>(kRawCapacity);
  size_t raw_size = 0;
  std::unique_ptr<std::byte[]> compressed;
  size_t compressed_capacity = 0;
  Clock::time_point raw_since;
  ZSTD_CCtx* zstd = nullptr;

  std::mutex lock;
  std::vector<StoredTraceChunk> ready;  // under lock
  std::atomic<uint64_t> streams_seen{0}, bytes_received{0}, bytes_compressed{0};
  std::atomic<bool> finishing{false};
  Clock::time_point finish_deadline;
  bool finished = false;

  void run();
  void accept_all();
  bool read_stream(int fd, uint32_t stream);  // false at EOF or error
  void add_frame_header(uint32_t stream, uint32_t bytes, size_t at);
  void compress();
};

void TraceCollector::State::add_frame_header(uint32_t stream, uint32_t bytes, size_t at) {
  trace::ChunkFrameHeader header{stream, bytes};
  std::memcpy(raw.get() + at, &header, sizeof(header));
}

void TraceCollector::State::accept_all() {
  for (;;) {
    int fd = ::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    Fd owned(fd);
    if (!same_user(fd)) continue;
    uint32_t number = next_stream++;
    streams.emplace(fd, std::make_pair(std::move(owned), number));
    streams_seen.fetch_add(1, std::memory_order_relaxed);
  }
}

bool TraceCollector::State::read_stream(int fd, uint32_t stream) {
  // Bounded per call, so one busy process cannot starve the others.
  for (int round = 0; round < 16; ++round) {
    if (raw_size == 0) raw_since = Clock::now();
    size_t at = raw_size;
    ssize_t got = ::read(fd, raw.get() + at + sizeof(trace::ChunkFrameHeader), kReadBytes);
    if (got > 0) {
      add_frame_header(stream, static_cast<uint32_t>(got), at);
      raw_size = at + sizeof(trace::ChunkFrameHeader) + static_cast<size_t>(got);
      bytes_received.fetch_add(static_cast<uint64_t>(got), std::memory_order_relaxed);
      if (raw_size >= kChunkRawBytes) compress();
      continue;
    }
    if (got < 0 && (errno == EAGAIN || errno == EINTR)) return true;
    // End of the stream: the process closed it (exit, exec, or death).
    add_frame_header(stream, 0, at);
    raw_size = at + sizeof(trace::ChunkFrameHeader);
    return false;
  }
  return true;
}

void TraceCollector::State::compress() {
  if (raw_size == 0) return;
  StoredTraceChunk chunk;
  chunk.t_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
  size_t bound = ZSTD_compressBound(raw_size);
  if (bound > compressed_capacity) {
    compressed = std::make_unique_for_overwrite<std::byte[]>(bound);
    compressed_capacity = bound;
  }
  size_t size = ZSTD_compressCCtx(zstd, compressed.get(), compressed_capacity, raw.get(), raw_size, kZstdLevel);
  if (ZSTD_isError(size)) {
    // Cannot happen with a bound-sized output; stop rather than store a chunk the reader rejects.
    std::fprintf(stderr, "memdx: compressing the heap trace failed: %s\n", ZSTD_getErrorName(size));
    std::abort();
  }
  chunk.data.assign(compressed.get(), compressed.get() + size);
  bytes_compressed.fetch_add(size, std::memory_order_relaxed);
  raw_size = 0;
  std::lock_guard<std::mutex> guard(lock);
  ready.push_back(std::move(chunk));
}

void TraceCollector::State::run() {
  Clock::time_point last_data = Clock::now();
  std::vector<pollfd> fds;
  for (;;) {
    fds.clear();
    fds.push_back({wake.get(), POLLIN, 0});
    fds.push_back({listener.get(), POLLIN, 0});
    for (const auto& [fd, stream] : streams) fds.push_back({fd, POLLIN, 0});
    ::poll(fds.data(), fds.size(), 100);
    if (fds[1].revents) accept_all();
    for (size_t i = 2; i < fds.size(); ++i) {
      if (!fds[i].revents) continue;
      last_data = Clock::now();
      auto found = streams.find(fds[i].fd);
      if (!read_stream(found->first, found->second.second)) streams.erase(found);
    }
    if (raw_size > 0 && Clock::now() - raw_since >= kChunkAge) compress();
    if (finishing.load(std::memory_order_acquire)) {
      accept_all();
      bool quiet = Clock::now() - last_data >= kQuietStream;
      if (streams.empty() || quiet || Clock::now() >= finish_deadline) break;
    }
  }
  compress();
}

std::unique_ptr<TraceCollector> TraceCollector::start() {
  // Chunks of a few MiB come and go several times a second: served from glibc's heap and reused,
  // instead of a fresh mmap (and a page fault per 4 KiB) for each.
  ::mallopt(M_MMAP_THRESHOLD, 64 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 256 << 20);
  auto state = std::make_unique<State>();
  state->name = random_socket_name();
  state->listener = listen_abstract(state->name);
  state->wake = Fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  state->zstd = ZSTD_createCCtx();
  if (state->wake.get() < 0 || !state->zstd) throw std::runtime_error("cannot start the tracer's collector");
  State* raw_state = state.get();
  state->thread = std::thread([raw_state] { raw_state->run(); });
  return std::unique_ptr<TraceCollector>(new TraceCollector(std::move(state)));
}

TraceCollector::TraceCollector(std::unique_ptr<State> state) : state_(std::move(state)) {}

TraceCollector::~TraceCollector() {
  finish(std::chrono::milliseconds(0));
  ZSTD_freeCCtx(state_->zstd);
}

const std::string& TraceCollector::socket_name() const { return state_->name; }

std::vector<StoredTraceChunk> TraceCollector::take_chunks() {
  std::lock_guard<std::mutex> guard(state_->lock);
  return std::exchange(state_->ready, {});
}

void TraceCollector::finish(std::chrono::milliseconds grace) {
  if (state_->finished) return;
  state_->finished = true;
  state_->finish_deadline = Clock::now() + grace;
  state_->finishing.store(true, std::memory_order_release);
  uint64_t one = 1;
  [[maybe_unused]] ssize_t written = ::write(state_->wake.get(), &one, sizeof(one));
  if (state_->thread.joinable()) state_->thread.join();
}

CollectorStats TraceCollector::stats() const {
  return {state_->streams_seen.load(), state_->bytes_received.load(), state_->bytes_compressed.load()};
}

}  // namespace memdx::record
