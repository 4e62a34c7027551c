#include "trace/preload/stream.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "trace/preload/raw_syscall.h"

namespace memdx::trace {
namespace {

// Away from the low numbers a program opens and closes as it goes.
constexpr int kHighDescriptor = 512;
constexpr time_t kSendTimeoutS = 5;

int socket_fd = -1;
// A copy of socket_fd readable without the lock, for the close hooks.
std::atomic<int> published_fd{-1};
// The socket's identity: a program that closes the descriptor behind our back (a raw system call)
// and opens another file could get our number, and trace bytes must never land in its file.
dev_t socket_device = 0;
ino_t socket_inode = 0;
pthread_mutex_t socket_lock = PTHREAD_MUTEX_INITIALIZER;
std::atomic<bool> open_now{false};

void set_socket(int fd) noexcept {
  socket_fd = fd;
  published_fd.store(fd, std::memory_order_release);
}

// The listener must be the collector memdx named, running as this process's user or as root.
bool listener_is_collector(int fd, pid_t collector_pid) noexcept {
  ucred peer{};
  socklen_t length = sizeof(peer);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &length) != 0) return false;
  return peer.pid == collector_pid && (peer.uid == 0 || peer.uid == ::geteuid());
}

int move_high(int fd) noexcept {
  int high = ::fcntl(fd, F_DUPFD_CLOEXEC, kHighDescriptor);
  if (high < 0) return fd;  // a low limit on descriptors: keep the number we have
  raw::close(fd);
  return high;
}

int connect_collector(const StreamTarget& target) noexcept {
  size_t length = std::strlen(target.socket_path);
  sockaddr_un address{};
  if (length == 0 || length + 1 > sizeof(address.sun_path)) return -1;
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, target.socket_path, length + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  // A collector that stops reading (memdx stopped, stuck, or out of descriptors with this
  // connection still in its backlog) must not stop the program: past this, connect and sendmsg
  // fail and the tracer stops instead. It bounds how long any thread can wait on the socket's lock.
  timeval limit{kSendTimeoutS, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
  auto address_length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + length + 1);
  while (raw::connect(fd, reinterpret_cast<const sockaddr*>(&address), address_length) != 0) {
    if (errno == EINTR) continue;
    raw::close(fd);
    return -1;
  }
  if (!listener_is_collector(fd, target.collector_pid)) {
    raw::close(fd);
    return -1;
  }
  return move_high(fd);
}

bool remember_identity(int fd) noexcept {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return false;
  socket_device = st.st_dev;
  socket_inode = st.st_ino;
  return true;
}

bool still_ours() noexcept {
  struct stat st {};
  return ::fstat(socket_fd, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == socket_device &&
         st.st_ino == socket_inode;
}

// Writes everything or fails; sendmsg with MSG_NOSIGNAL so a vanished collector is an error
// here, not a SIGPIPE that kills the target.
bool send_all(iovec* pieces, int count) noexcept {
  while (count > 0) {
    msghdr message{};
    message.msg_iov = pieces;
    message.msg_iovlen = static_cast<size_t>(count);
    ssize_t sent = raw::sendmsg(socket_fd, &message, MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    auto left = static_cast<size_t>(sent);
    while (count > 0 && left >= pieces->iov_len) {
      left -= pieces->iov_len;
      ++pieces;
      --count;
    }
    if (count > 0) {
      pieces->iov_base = static_cast<char*>(pieces->iov_base) + left;
      pieces->iov_len -= left;
    }
  }
  return true;
}

bool send_greeting(const StreamTarget& target, uint64_t sample_bytes, uint32_t max_depth, uint32_t flags) noexcept {
  wire::StreamAuth auth{};
  std::memcpy(auth.magic, wire::kAuthMagic, sizeof(auth.magic));
  std::memcpy(auth.key, target.key, sizeof(auth.key));
  wire::StreamHello hello{};
  std::memcpy(hello.magic, wire::kStreamMagic, sizeof(hello.magic));
  hello.version = wire::kVersion;
  hello.hello_bytes = sizeof(hello);
  hello.pid = ::getpid();
  hello.ppid = ::getppid();
  hello.start_monotonic_ns = monotonic_ns();
  hello.sample_bytes = sample_bytes;
  hello.max_depth = max_depth;
  hello.flags = flags;
  iovec pieces[2] = {{&auth, sizeof(auth)}, {&hello, sizeof(hello)}};
  return send_all(pieces, 2);
}

void close_locked() noexcept {
  open_now.store(false, std::memory_order_release);
  if (socket_fd >= 0 && still_ours()) raw::close(socket_fd);
  set_socket(-1);
}

}  // namespace

uint64_t monotonic_ns() noexcept {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1000000000ull + static_cast<uint64_t>(now.tv_nsec);
}

uint64_t coarse_ns() noexcept {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1000000000ull + static_cast<uint64_t>(now.tv_nsec);
}

bool stream_open(const StreamTarget& target, uint64_t sample_bytes, uint32_t max_depth, uint32_t hello_flags) noexcept {
  pthread_mutex_lock(&socket_lock);
  int fd = connect_collector(target);
  if (fd >= 0 && !remember_identity(fd)) {
    raw::close(fd);
    fd = -1;
  }
  if (fd >= 0) set_socket(fd);
  bool ok = fd >= 0 && send_greeting(target, sample_bytes, max_depth, hello_flags);
  if (!ok) close_locked();
  open_now.store(ok, std::memory_order_release);
  pthread_mutex_unlock(&socket_lock);
  return ok;
}

void stream_after_fork_child() noexcept {
  // The parent's socket is shared with the parent: close only this process's descriptor.
  socket_lock = PTHREAD_MUTEX_INITIALIZER;
  if (socket_fd >= 0 && still_ours()) raw::close(socket_fd);
  set_socket(-1);
  open_now.store(false, std::memory_order_release);
}

bool stream_is_open() noexcept {
  return open_now.load(std::memory_order_acquire);
}

bool stream_send(wire::BatchKind kind, pid_t tid, const iovec* pieces, int piece_count) noexcept {
  constexpr int kMaxPieces = 4;
  if (piece_count > kMaxPieces - 1) return false;
  size_t payload_bytes = 0;
  for (int i = 0; i < piece_count; ++i) payload_bytes += pieces[i].iov_len;
  wire::BatchHeader header{wire::kBatchMagic, static_cast<uint32_t>(kind), tid, static_cast<uint32_t>(payload_bytes)};
  iovec all[kMaxPieces];
  all[0] = {&header, sizeof(header)};
  for (int i = 0; i < piece_count; ++i) all[i + 1] = pieces[i];
  pthread_mutex_lock(&socket_lock);
  bool ok = socket_fd >= 0 && still_ours() && send_all(all, piece_count + 1);
  if (!ok) close_locked();
  pthread_mutex_unlock(&socket_lock);
  return ok;
}

int stream_descriptor() noexcept {
  return published_fd.load(std::memory_order_acquire);
}

void stream_move_off(int fd) noexcept {
  if (fd < 0 || published_fd.load(std::memory_order_acquire) != fd) return;
  pthread_mutex_lock(&socket_lock);
  if (socket_fd == fd) {
    int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, fd + 1);
    if (moved >= 0) set_socket(moved);  // the caller's dup2 then closes the old number
  }
  pthread_mutex_unlock(&socket_lock);
}

void stream_lock_for_fork() noexcept {
  pthread_mutex_lock(&socket_lock);
}

void stream_unlock_after_fork_parent() noexcept {
  pthread_mutex_unlock(&socket_lock);
}

}  // namespace memdx::trace
