// A /proc file kept open and re-read with pread(): no path walk per read, which is most of the
// cost of a small /proc file, and a read fails once the process is gone, because the open file
// pins the task it was opened for (a reused pid cannot answer for it).
#pragma once

#include <optional>
#include <string>

#include "proc/unique_fd.h"

namespace memdx::proc {

class KeptFile {
 public:
  // nullopt when it cannot be opened (gone, no access, or out of file descriptors).
  static std::optional<KeptFile> open(const std::string& path);

  // Reads the whole file into `out`; false when it cannot be read any more, with the reason in
  // `*error` when given (ESRCH: the process it was opened for has been reaped).
  bool read(std::string& out, int* error = nullptr) const;

 private:
  explicit KeptFile(int fd) : fd_(fd) {}
  UniqueFd fd_;
};

}  // namespace memdx::proc
