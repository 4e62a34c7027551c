// A /proc file kept open and re-read with pread(): no path walk per read, which is most of the
// cost of a small /proc file, and a read fails once the process is gone, because the open file
// pins the task it was opened for (a reused pid cannot answer for it).
#pragma once

#include <optional>
#include <string>

namespace memdx::proc {

class KeptFile {
 public:
  // nullopt when it cannot be opened (gone, no access, or out of file descriptors).
  static std::optional<KeptFile> open(const std::string& path);

  KeptFile(KeptFile&& other) noexcept;
  KeptFile& operator=(KeptFile&& other) noexcept;
  KeptFile(const KeptFile&) = delete;
  KeptFile& operator=(const KeptFile&) = delete;
  ~KeptFile();

  // Reads the whole file into `out`; false when it cannot be read any more, with the reason in
  // `*error` when given (ESRCH: the process it was opened for has been reaped).
  bool read(std::string& out, int* error = nullptr) const;

 private:
  explicit KeptFile(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace memdx::proc
