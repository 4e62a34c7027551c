#include "proc/kept_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace memdx::proc {

std::optional<KeptFile> KeptFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  return KeptFile(fd);
}

bool KeptFile::read(std::string& out, int* error) const {
  out.clear();
  char chunk[4096];
  for (off_t offset = 0;;) {
    ssize_t n = ::pread(fd_.get(), chunk, sizeof(chunk), offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (error) *error = errno;
      return false;
    }
    if (n == 0) return true;
    out.append(chunk, static_cast<size_t>(n));
    offset += n;
  }
}

}  // namespace memdx::proc
