#include "cli/output_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "cli/errors.h"

namespace memdx::cli {

OutputFile::OutputFile(const std::string& path) : path_(path), partial_path_(path + ".partial") {
  if (path.empty()) return;
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    throw RuntimeError(fmt::format("cannot write {}: it is a directory", path));
  }
  fd_ = ::open(partial_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd_ < 0) fail();
}

OutputFile::OutputFile(OutputFile&& other) noexcept
    : path_(std::move(other.path_)), partial_path_(std::move(other.partial_path_)), fd_(std::exchange(other.fd_, -1)) {}

OutputFile& OutputFile::operator=(OutputFile&& other) noexcept {
  if (this != &other) {
    discard();
    path_ = std::move(other.path_);
    partial_path_ = std::move(other.partial_path_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

OutputFile::~OutputFile() {
  discard();
}

void OutputFile::discard() {
  if (fd_ < 0) return;
  ::close(std::exchange(fd_, -1));
  ::unlink(partial_path_.c_str());
}

void OutputFile::write_all(const std::string& bytes) {
  if (fd_ < 0) return;
  for (size_t written = 0; written < bytes.size();) {
    ssize_t n = ::write(fd_, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno != EINTR) {
      int reason = errno;
      discard();
      errno = reason;
      fail();
    }
    if (n > 0) written += static_cast<size_t>(n);
  }
  int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0 || ::rename(partial_path_.c_str(), path_.c_str()) != 0) {
    int reason = errno;
    ::unlink(partial_path_.c_str());
    errno = reason;
    fail();
  }
}

void OutputFile::fail() const {
  throw RuntimeError(fmt::format("cannot write {}: {}", path_, std::strerror(errno)));
}

}  // namespace memdx::cli
