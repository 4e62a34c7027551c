// Classifying open file descriptors from their /proc/PID/fd/N link targets.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace memdx::proc {

enum class FdType : uint8_t {
  kRegular,
  kDirectory,
  kSocket,
  kPipe,  // anonymous pipes and named FIFOs
  kPty,   // terminals: /dev/pts/N, /dev/ptmx, /dev/tty*
  kEventfd,
  kAnonInode,  // epoll, timerfd, signalfd, inotify, pidfd, io_uring, bpf, ...
  kMemfd,
  kDmabuf,
  kDevice,  // other character and block devices, GPU driver nodes among them
  kOther,
  kCount,
};

std::string_view fd_type_name(FdType type);

// `mode` is st_mode from stat() on the link, when it could be taken; it separates regular
// files from directories, devices and FIFOs behind a plain path.
FdType classify_fd(std::string_view link_target, std::optional<mode_t> mode);

struct FdCounts {
  uint32_t total = 0;
  std::array<uint32_t, static_cast<size_t>(FdType::kCount)> by_type{};
  // GPU driver nodes among the devices: the fds whose fdinfo a DRM driver fills (/dev/dri/*),
  // and how many of NVIDIA's (/dev/nvidia*) are open (a process using the GPU through CUDA).
  std::vector<int> drm_fds;
  uint32_t nvidia_fds = 0;

  uint32_t count(FdType type) const { return by_type[static_cast<size_t>(type)]; }
  void add(FdType type) {
    ++total;
    ++by_type[static_cast<size_t>(type)];
  }
};

}  // namespace memdx::proc
