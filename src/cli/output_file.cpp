#include "cli/output_file.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <random>
#include <utility>

#include <fmt/format.h>

#include "cli/errors.h"
#include "cli/output_paths.h"
#include "store/file_type.h"

namespace memdx::cli {
namespace {

constexpr char kTempSuffix[] = ".partial";

}  // namespace

OutputFile::OutputFile(const std::string& path) : path_(path) {
  if (!path.empty()) open(follow_links(path));
}

void OutputFile::open(const std::string& target) {
  if (std::optional<int> fd = named_descriptor(target)) return open_descriptor(*fd);
  struct stat st {};
  if (::lstat(target.c_str(), &st) != 0) {
    if (errno != ENOENT) fail(errno);
    // /dev holds devices: a missing name there is a mistyped device (as root, a regular file
    // would appear in /dev), never a place for a report.
    if (std::filesystem::path(target).parent_path() == "/dev") refuse("there is no such device");
    return open_replacement(target);
  }
  if (S_ISREG(st.st_mode)) return open_replacement(target);
  if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)) return open_stream(target, S_ISFIFO(st.st_mode));
  if (S_ISBLK(st.st_mode)) refuse("it is a block device (memdx writes reports into files, never onto a disk)");
  refuse(std::string("it is ") + store::file_type_name(st.st_mode));
}

OutputFile::OutputFile(OutputFile&& other) noexcept {
  *this = std::move(other);
}

OutputFile& OutputFile::operator=(OutputFile&& other) noexcept {
  if (this != &other) {
    discard();
    path_ = std::move(other.path_);
    kind_ = std::exchange(other.kind_, Kind::kNone);
    fd_ = std::exchange(other.fd_, -1);
    target_ = std::move(other.target_);
    temp_path_ = std::exchange(other.temp_path_, {});  // the moved-from one must not unlink it
  }
  return *this;
}

OutputFile::~OutputFile() {
  discard();
}

void OutputFile::open_descriptor(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) fail(errno);
  if ((flags & O_ACCMODE) == O_RDONLY) refuse(fmt::format("descriptor {} is open for reading only", fd));
  kind_ = Kind::kDescriptor;
  fd_ = fd;
}

void OutputFile::open_replacement(const std::string& target) {
  kind_ = Kind::kReplace;
  target_ = target;
  // An unnamed file (O_TMPFILE) leaves nothing behind when memdx is killed before the end; it is
  // 0600 from its first byte, and linked beside the target only once written.
  std::string directory = std::filesystem::path(target).parent_path().string();
  fd_ = ::open(directory.empty() ? "." : directory.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
  if (fd_ >= 0) return;
  if (errno != EOPNOTSUPP && errno != EISDIR) fail(errno);  // EISDIR: a kernel without O_TMPFILE
  // Elsewhere a named one, made with exclusive creation (O_EXCL) under a random name: nothing
  // planted beside the target is followed or reused.
  std::string pattern = target + ".XXXXXX" + kTempSuffix;
  fd_ = ::mkostemps(pattern.data(), sizeof(kTempSuffix) - 1, O_CLOEXEC);
  if (fd_ < 0) fail(errno);
  temp_path_ = std::move(pattern);
}

// Gives the unnamed file a fresh name beside the target. linkat neither replaces nor follows
// what is there: a name that is taken (EEXIST) is drawn again.
void OutputFile::link_unnamed_file() {
  const std::string self = fmt::format("/proc/self/fd/{}", fd_);
  std::random_device random;
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::string name = fmt::format("{}.{:08x}{}", target_, random(), kTempSuffix);
    if (::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, name.c_str(), AT_SYMLINK_FOLLOW) == 0) {
      temp_path_ = std::move(name);
      return;
    }
    if (errno != EEXIST) fail(errno);
  }
  fail(EEXIST);
}

void OutputFile::open_stream(const std::string& node, bool is_fifo) {
  kind_ = Kind::kStream;
  target_ = node;
  // Never created nor truncated; O_NONBLOCK so that a FIFO without a reader answers ENXIO at
  // once instead of holding memdx before the command even starts.
  fd_ = ::open(node.c_str(), O_WRONLY | O_NOCTTY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd_ < 0 && errno == ENXIO && is_fifo) return;  // opened when written
  if (fd_ < 0) fail(errno);
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || !(S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode))) {
    refuse("it was replaced by another kind of file while memdx opened it");
  }
  // Writes wait for a slow reader rather than fail with EAGAIN.
  ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) & ~O_NONBLOCK);
}

void OutputFile::open_waiting_fifo() {
  // The command is done: now memdx may wait for the reader, as a shell redirection would.
  do {
    fd_ = ::open(target_.c_str(), O_WRONLY | O_NOCTTY | O_NOFOLLOW | O_CLOEXEC);
  } while (fd_ < 0 && errno == EINTR);
  if (fd_ < 0) fail(errno);
}

// A reader that went away (a closed pipe or FIFO) is EPIPE here, one line: main() ignores SIGPIPE.
int OutputFile::write_fully(const std::string& bytes) const {
  for (size_t written = 0; written < bytes.size();) {
    ssize_t n = ::write(fd_, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {  // a descriptor someone made non-blocking
      pollfd ready{fd_, POLLOUT, 0};
      ::poll(&ready, 1, -1);
      continue;
    }
    if (n < 0) return errno;
    written += static_cast<size_t>(n);
  }
  return 0;
}

void OutputFile::write_all(const std::string& bytes) {
  if (kind_ == Kind::kNone) return;
  if (fd_ < 0) open_waiting_fifo();
  if (kind_ == Kind::kDescriptor) std::fflush(nullptr);  // text stdio holds for it goes first
  if (int error = write_fully(bytes)) fail(error);
  if (kind_ == Kind::kReplace) replace_target();
  discard();
}

// Renames the written file over the target, which must still be a regular file or nothing: a
// device or a directory put there while the command ran is not memdx's to replace.
void OutputFile::replace_target() {
  if (temp_path_.empty()) link_unnamed_file();
  if (::close(std::exchange(fd_, -1)) != 0) fail(errno);
  struct stat st {};
  if (::lstat(target_.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    refuse(
        fmt::format("{} became {} while memdx ran; it is left as it is", target_, store::file_type_name(st.st_mode)));
  }
  if (::rename(temp_path_.c_str(), target_.c_str()) != 0) fail(errno);
  temp_path_.clear();
}

void OutputFile::fail(int error) {
  discard();
  throw RuntimeError(fmt::format("cannot write {}: {}", path_, std::strerror(error)));
}

void OutputFile::refuse(const std::string& why) {
  discard();
  throw RuntimeError(fmt::format("cannot write {}: {}", path_, why));
}

void OutputFile::discard() {
  if (kind_ != Kind::kDescriptor && fd_ >= 0) ::close(fd_);
  if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
  kind_ = Kind::kNone;
  fd_ = -1;
  temp_path_.clear();
}

}  // namespace memdx::cli
