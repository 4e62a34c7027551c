// System calls the tracer makes from inside hooks, issued directly. The libc wrappers of read,
// write, open and close are cancellation points: a thread cancelled inside one would leave the
// tracer's guard or a lock held. Direct syscall() is not a cancellation point, takes no lock and
// never allocates. Each returns -1 with errno set on failure, like the wrappers.
#pragma once

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

namespace memdx::trace::raw {

inline int open_read_only(const char* path) noexcept {
  return static_cast<int>(::syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC));
}
inline ssize_t read(int fd, void* buffer, size_t bytes) noexcept {
  return ::syscall(SYS_read, fd, buffer, bytes);
}
inline ssize_t pread(int fd, void* buffer, size_t bytes, off_t offset) noexcept {
  return ::syscall(SYS_pread64, fd, buffer, bytes, offset);
}
inline int close(int fd) noexcept {
  return static_cast<int>(::syscall(SYS_close, fd));
}
inline ssize_t sendmsg(int fd, const msghdr* message, int flags) noexcept {
  return ::syscall(SYS_sendmsg, fd, message, flags);
}
inline int connect(int fd, const sockaddr* address, socklen_t length) noexcept {
  return static_cast<int>(::syscall(SYS_connect, fd, address, length));
}

}  // namespace memdx::trace::raw
