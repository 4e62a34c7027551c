#include "proc/fds.h"

#include <sys/stat.h>

namespace memdx::proc {

std::string_view fd_type_name(FdType type) {
  switch (type) {
    case FdType::kRegular:
      return "regular";
    case FdType::kDirectory:
      return "directory";
    case FdType::kSocket:
      return "socket";
    case FdType::kPipe:
      return "pipe";
    case FdType::kPty:
      return "pty";
    case FdType::kEventfd:
      return "eventfd";
    case FdType::kAnonInode:
      return "anon_inode";
    case FdType::kMemfd:
      return "memfd";
    case FdType::kDmabuf:
      return "dmabuf";
    case FdType::kDevice:
      return "device";
    case FdType::kOther:
      return "other";
    case FdType::kCount:
      break;
  }
  return "other";
}

FdType classify_fd(std::string_view target, std::optional<mode_t> mode) {
  if (target.starts_with("socket:")) return FdType::kSocket;
  if (target.starts_with("pipe:")) return FdType::kPipe;
  if (target.starts_with("/memfd:")) return FdType::kMemfd;
  // dma-buf fds read "/dmabuf:NAME" on current kernels and "anon_inode:dmabuf" on older ones.
  if (target.starts_with("/dmabuf:") || target == "anon_inode:dmabuf") return FdType::kDmabuf;
  if (target == "anon_inode:[eventfd]") return FdType::kEventfd;
  if (target.starts_with("anon_inode:")) return FdType::kAnonInode;
  if (target.starts_with("/dev/pts/") || target == "/dev/ptmx" || target == "/dev/tty" ||
      target.starts_with("/dev/tty") || target == "/dev/console") {
    return FdType::kPty;
  }
  if (!target.starts_with("/")) return FdType::kOther;
  if (!mode) return FdType::kRegular;
  if (S_ISREG(*mode)) return FdType::kRegular;
  if (S_ISDIR(*mode)) return FdType::kDirectory;
  if (S_ISFIFO(*mode)) return FdType::kPipe;
  if (S_ISSOCK(*mode)) return FdType::kSocket;
  if (S_ISCHR(*mode) || S_ISBLK(*mode)) return FdType::kDevice;
  return FdType::kOther;
}

}  // namespace memdx::proc
