// Classifying /proc/PID/fd link targets.
#include "proc/fds.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

namespace memdx::proc {
namespace {

TEST(ProcClassifyFd, KernelObjectsByTheirLinkText) {
  EXPECT_EQ(classify_fd("socket:[40962]", std::nullopt), FdType::kSocket);
  EXPECT_EQ(classify_fd("pipe:[40961]", std::nullopt), FdType::kPipe);
  EXPECT_EQ(classify_fd("anon_inode:[eventfd]", std::nullopt), FdType::kEventfd);
  EXPECT_EQ(classify_fd("anon_inode:[eventpoll]", std::nullopt), FdType::kAnonInode);
  EXPECT_EQ(classify_fd("anon_inode:[timerfd]", std::nullopt), FdType::kAnonInode);
  EXPECT_EQ(classify_fd("anon_inode:[pidfd]", std::nullopt), FdType::kAnonInode);
  EXPECT_EQ(classify_fd("anon_inode:inotify", std::nullopt), FdType::kAnonInode);
  EXPECT_EQ(classify_fd("anon_inode:[io_uring]", std::nullopt), FdType::kAnonInode);
  EXPECT_EQ(classify_fd("net:[4026531840]", std::nullopt), FdType::kOther);
}

TEST(ProcClassifyFd, MemfdAndDmabuf) {
  EXPECT_EQ(classify_fd("/memfd:pool (deleted)", std::nullopt), FdType::kMemfd);
  EXPECT_EQ(classify_fd("/memfd:pool (deleted)", S_IFREG | 0600), FdType::kMemfd);
  EXPECT_EQ(classify_fd("/dmabuf:", std::nullopt), FdType::kDmabuf);
  EXPECT_EQ(classify_fd("/dmabuf:gpu-buffer", std::nullopt), FdType::kDmabuf);
  EXPECT_EQ(classify_fd("anon_inode:dmabuf", std::nullopt), FdType::kDmabuf);
}

TEST(ProcClassifyFd, Terminals) {
  EXPECT_EQ(classify_fd("/dev/pts/3", std::nullopt), FdType::kPty);
  EXPECT_EQ(classify_fd("/dev/ptmx", S_IFCHR | 0666), FdType::kPty);
  EXPECT_EQ(classify_fd("/dev/tty", S_IFCHR | 0666), FdType::kPty);
  EXPECT_EQ(classify_fd("/dev/tty1", S_IFCHR | 0620), FdType::kPty);
  EXPECT_EQ(classify_fd("/dev/console", S_IFCHR | 0600), FdType::kPty);
}

TEST(ProcClassifyFd, PathsByTheirMode) {
  EXPECT_EQ(classify_fd("/var/log/app.log", S_IFREG | 0644), FdType::kRegular);
  EXPECT_EQ(classify_fd("/var/log", S_IFDIR | 0755), FdType::kDirectory);
  EXPECT_EQ(classify_fd("/run/app.fifo", S_IFIFO | 0600), FdType::kPipe);
  EXPECT_EQ(classify_fd("/run/app.sock", S_IFSOCK | 0600), FdType::kSocket);
  EXPECT_EQ(classify_fd("/dev/null", S_IFCHR | 0666), FdType::kDevice);
  EXPECT_EQ(classify_fd("/dev/nvidia0", S_IFCHR | 0666), FdType::kDevice);
  EXPECT_EQ(classify_fd("/dev/dri/renderD128", S_IFCHR | 0666), FdType::kDevice);
  EXPECT_EQ(classify_fd("/dev/nvme0n1", S_IFBLK | 0660), FdType::kDevice);
  EXPECT_EQ(classify_fd("/proc/self/ns/x", S_IFLNK | 0777), FdType::kOther);
}

TEST(ProcClassifyFd, PathWithoutModeCountsAsRegular) {
  // A deleted file, or one stat() could not reach.
  EXPECT_EQ(classify_fd("/tmp/scratch (deleted)", std::nullopt), FdType::kRegular);
  EXPECT_EQ(classify_fd("", std::nullopt), FdType::kOther);
}

TEST(ProcFdTypes, NamesAreStable) {
  EXPECT_EQ(fd_type_name(FdType::kRegular), "regular");
  EXPECT_EQ(fd_type_name(FdType::kDirectory), "directory");
  EXPECT_EQ(fd_type_name(FdType::kSocket), "socket");
  EXPECT_EQ(fd_type_name(FdType::kPipe), "pipe");
  EXPECT_EQ(fd_type_name(FdType::kPty), "pty");
  EXPECT_EQ(fd_type_name(FdType::kEventfd), "eventfd");
  EXPECT_EQ(fd_type_name(FdType::kAnonInode), "anon_inode");
  EXPECT_EQ(fd_type_name(FdType::kMemfd), "memfd");
  EXPECT_EQ(fd_type_name(FdType::kDmabuf), "dmabuf");
  EXPECT_EQ(fd_type_name(FdType::kDevice), "device");
  EXPECT_EQ(fd_type_name(FdType::kOther), "other");
}

TEST(ProcFdTypes, CountsAddUp) {
  FdCounts counts;
  counts.add(FdType::kPipe);
  counts.add(FdType::kPipe);
  counts.add(FdType::kSocket);
  EXPECT_EQ(counts.total, 3u);
  EXPECT_EQ(counts.count(FdType::kPipe), 2u);
  EXPECT_EQ(counts.count(FdType::kSocket), 1u);
  EXPECT_EQ(counts.count(FdType::kRegular), 0u);
}

}  // namespace
}  // namespace memdx::proc
