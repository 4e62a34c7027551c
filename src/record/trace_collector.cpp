#include "record/trace_collector.h"

#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <zstd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "proc/ancestry.h"
#include "proc/process_files.h"
#include "proc/procfs.h"
#include "proc/unique_fd.h"
#include "trace/format/chunk.h"
#include "trace/format/wire.h"

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

using proc::UniqueFd;

// The directory the socket lives in: the user's runtime directory when it is theirs alone, else
// $TMPDIR or /tmp. The socket's path must fit in sockaddr_un.
std::string socket_directory_base() {
  constexpr size_t kRoomForName = 40;  // "/memdx-XXXXXX/trace.sock" and then some
  for (const char* variable : {"XDG_RUNTIME_DIR", "TMPDIR"}) {
    const char* value = std::getenv(variable);
    if (!value || value[0] != '/' || std::strlen(value) + kRoomForName > sizeof(sockaddr_un::sun_path)) continue;
    struct stat st {};
    if (::stat(value, &st) == 0 && S_ISDIR(st.st_mode) && ::access(value, W_OK | X_OK) == 0) return value;
  }
  return "/tmp";
}

// A new directory of mode 0700 (mkdtemp): no other user can reach what is inside.
std::string make_private_directory() {
  std::string pattern = socket_directory_base() + "/memdx-XXXXXX";
  if (!::mkdtemp(pattern.data())) {
    throw std::runtime_error(fmt::format("cannot create a private directory for the tracer's socket in {}: {}",
                                         socket_directory_base(), std::strerror(errno)));
  }
  return pattern;
}

std::array<uint8_t, trace::wire::kKeyBytes> random_key() {
  std::array<uint8_t, trace::wire::kKeyBytes> key{};
  size_t filled = 0;
  while (filled < key.size()) {
    ssize_t got = ::getrandom(key.data() + filled, key.size() - filled, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) throw std::runtime_error(fmt::format("cannot make the tracer's secret: {}", std::strerror(errno)));
    filled += static_cast<size_t>(got);
  }
  return key;
}

std::string hex(const uint8_t* bytes, size_t count) {
  std::string out;
  for (size_t i = 0; i < count; ++i) out += fmt::format("{:02x}", bytes[i]);
  return out;
}

UniqueFd listen_at(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd.get() < 0)
    throw std::runtime_error(fmt::format("cannot create the tracer's socket: {}", std::strerror(errno)));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), length) != 0 || ::listen(fd.get(), 128) != 0) {
    throw std::runtime_error(fmt::format("cannot listen for the tracer at {}: {}", path, std::strerror(errno)));
  }
  return fd;
}

enum class Placement { kInTree, kOutside, kAncestorGone };

// One walk up the ppid chain from `pid`. A process that dies mid-walk ends it without throwing:
// the collector's thread must not throw.
Placement place(pid_t pid) {
  const pid_t self = ::getpid();
  proc::Ancestry ancestry = proc::ancestry_of(proc::ProcFs(), pid, self);
  if (ancestry.chain.back() == self) return Placement::kInTree;
  if (!ancestry.ended_at_gone) return Placement::kOutside;
  // The connecting process gone before it could be placed: it is let in on its other
  // credentials, since a short-lived child may exit before its connection is accepted. A task
  // being reaped still has its stat for a moment, with ppid 0: gone too.
  return ancestry.chain.size() == 1 ? Placement::kInTree : Placement::kAncestorGone;
}

// Whether memdx is an ancestor of `pid` (memdx started the traced tree and, as a child subreaper,
// adopts its orphans). An ancestor that is reaped during the walk (its stat gone, or read with
// ppid 0 while it is released) has handed its children to the nearest subreaper by then: the walk
// starts again from `pid`, whose parent is now that one.
bool in_traced_tree(pid_t pid) {
  for (int attempt = 0; attempt < 8; ++attempt) {
    Placement placement = place(pid);
    if (placement != Placement::kAncestorGone) return placement == Placement::kInTree;
  }
  return false;
}

// Constant time: how many bytes match is not told by how long the comparison takes.
bool same_key(const uint8_t* a, const uint8_t* b) {
  uint8_t difference = 0;
  for (size_t i = 0; i < trace::wire::kKeyBytes; ++i) difference |= static_cast<uint8_t>(a[i] ^ b[i]);
  return difference == 0;
}

}  // namespace

// One connection: first its secret, then its stream.
struct Connection {
  UniqueFd fd;
  pid_t pid = 0;
  uid_t uid = 0;
  uint32_t stream = 0;  // 0 until the secret checked out
  trace::wire::StreamAuth auth{};
  size_t auth_bytes = 0;
};

struct TraceCollector::State {
  CollectorAddress address;
  std::string directory;
  std::array<uint8_t, trace::wire::kKeyBytes> key{};
  UniqueFd listener;
  UniqueFd wake;     // eventfd: finish() was called
  UniqueFd reserve;  // a descriptor given up when memdx runs out of them (drop_one_waiting)
  std::thread thread;
  Clock::time_point started = Clock::now();

  // Reading thread only.
  std::map<int, Connection> connections;  // by fd
  uint32_t next_stream = 1;
  // The chunk being filled; never zero-filled (a resize of a vector would clear each read's room).
  std::unique_ptr<std::byte[]> raw = std::make_unique_for_overwrite<std::byte[]>(kRawCapacity);
  size_t raw_size = 0;
  std::unique_ptr<std::byte[]> compressed;
  size_t compressed_capacity = 0;
  Clock::time_point raw_since;
  ZSTD_CCtx* zstd = nullptr;

  mutable std::mutex lock;
  std::vector<StoredTraceChunk> ready;  // under lock
  std::vector<RefusedPeer> refusals;    // under lock
  std::atomic<uint64_t> streams_seen{0}, bytes_received{0}, bytes_compressed{0}, refused{0}, dropped{0};
  std::atomic<bool> finishing{false};
  Clock::time_point finish_deadline;
  bool finished = false;

  ~State() {
    listener = UniqueFd();
    if (!address.socket_path.empty()) ::unlink(address.socket_path.c_str());
    if (!directory.empty()) ::rmdir(directory.c_str());
  }

  void run();
  void accept_all();
  void refuse(pid_t pid, uid_t uid, RefusalReason reason);
  bool drop_one_waiting();
  bool read_connection(Connection& connection);  // false when it is over
  bool read_secret(Connection& connection);      // false when it is over
  bool read_stream(int fd, uint32_t stream);     // false at EOF or error
  void add_frame_header(uint32_t stream, uint32_t bytes, size_t at);
  void compress();
};

void TraceCollector::State::add_frame_header(uint32_t stream, uint32_t bytes, size_t at) {
  trace::ChunkFrameHeader header{stream, bytes};
  std::memcpy(raw.get() + at, &header, sizeof(header));
}

// Out of descriptors, a waiting connection would sit in the backlog and its process would wait on
// it (up to the tracer's send timeout, at each fork). The descriptor kept in reserve makes room to
// accept it and close it at once: that process runs on untraced, and the count says so.
bool TraceCollector::State::drop_one_waiting() {
  if (reserve.get() < 0) return false;
  reserve = UniqueFd();
  int fd = ::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC);
  if (fd >= 0) {
    ::close(fd);
    dropped.fetch_add(1, std::memory_order_relaxed);
  }
  reserve = UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  return fd >= 0;
}

void TraceCollector::State::refuse(pid_t pid, uid_t uid, RefusalReason reason) {
  refused.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> guard(lock);
  if (refusals.size() < kRefusalsKept) refusals.push_back({pid, uid, reason});
}

void TraceCollector::State::accept_all() {
  for (;;) {
    int fd = ::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if ((errno == EMFILE || errno == ENFILE) && drop_one_waiting()) continue;
      return;
    }
    Connection connection;
    connection.fd = UniqueFd(fd);
    ucred peer{};
    socklen_t length = sizeof(peer);
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &length) != 0) {
      refuse(0, 0, RefusalReason::kNoCredentials);
      continue;
    }
    connection.pid = peer.pid;
    connection.uid = peer.uid;
    if (peer.uid != ::geteuid()) {
      refuse(peer.pid, peer.uid, RefusalReason::kOtherUser);
    } else if (!in_traced_tree(peer.pid)) {
      refuse(peer.pid, peer.uid, RefusalReason::kOutsideTree);
    } else {
      connections.emplace(fd, std::move(connection));
    }
  }
}

bool TraceCollector::State::read_secret(Connection& connection) {
  auto* into = reinterpret_cast<uint8_t*>(&connection.auth) + connection.auth_bytes;
  ssize_t got = ::read(connection.fd.get(), into, sizeof(connection.auth) - connection.auth_bytes);
  if (got < 0 && (errno == EAGAIN || errno == EINTR)) return true;
  if (got <= 0) {
    // A process that left before saying anything is no intruder; one that stopped mid-secret is.
    if (connection.auth_bytes > 0) refuse(connection.pid, connection.uid, RefusalReason::kWrongSecret);
    return false;
  }
  connection.auth_bytes += static_cast<size_t>(got);
  if (connection.auth_bytes < sizeof(connection.auth)) return true;
  if (std::memcmp(connection.auth.magic, trace::wire::kAuthMagic, sizeof(connection.auth.magic)) != 0 ||
      !same_key(connection.auth.key, key.data())) {
    refuse(connection.pid, connection.uid, RefusalReason::kWrongSecret);
    return false;
  }
  connection.stream = next_stream++;
  streams_seen.fetch_add(1, std::memory_order_relaxed);
  return true;
}

bool TraceCollector::State::read_connection(Connection& connection) {
  if (connection.stream == 0) {
    if (!read_secret(connection)) return false;
    if (connection.stream == 0) return true;
  }
  return read_stream(connection.fd.get(), connection.stream);
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
    for (const auto& [fd, connection] : connections) fds.push_back({fd, POLLIN, 0});
    ::poll(fds.data(), fds.size(), 100);
    if (fds[1].revents) accept_all();
    for (size_t i = 2; i < fds.size(); ++i) {
      if (!fds[i].revents) continue;
      last_data = Clock::now();
      auto found = connections.find(fds[i].fd);
      if (!read_connection(found->second)) connections.erase(found);
    }
    if (raw_size > 0 && Clock::now() - raw_since >= kChunkAge) compress();
    if (finishing.load(std::memory_order_acquire)) {
      accept_all();
      bool quiet = Clock::now() - last_data >= kQuietStream;
      if (connections.empty() || quiet || Clock::now() >= finish_deadline) break;
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
  state->directory = make_private_directory();
  state->key = random_key();
  state->address.socket_path = state->directory + "/trace.sock";
  state->address.key_hex = hex(state->key.data(), state->key.size());
  state->address.collector_pid = ::getpid();
  state->listener = listen_at(state->address.socket_path);
  state->wake = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  state->reserve = UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
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

const CollectorAddress& TraceCollector::address() const {
  return state_->address;
}

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
  return {state_->streams_seen.load(), state_->bytes_received.load(), state_->bytes_compressed.load(),
          state_->refused.load(), state_->dropped.load()};
}

std::vector<RefusedPeer> TraceCollector::refused() const {
  std::lock_guard<std::mutex> guard(state_->lock);
  return state_->refusals;
}

std::string_view refusal_text(RefusalReason reason) {
  switch (reason) {
    case RefusalReason::kOtherUser:
      return "another user";
    case RefusalReason::kOutsideTree:
      return "not a process of the traced tree";
    case RefusalReason::kWrongSecret:
      return "without the run's secret";
    case RefusalReason::kNoCredentials:
      return "credentials unreadable";
  }
  return "refused";
}

}  // namespace memdx::record
