// Holds exactly 5 sockets, 3 pipe fds and 2 memfds, and nothing else: every inherited fd is
// closed first, and stdin/stdout/stderr are closed once "ready" has been said. The test
// ends it with a signal.
#include <dirent.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <cstdlib>
#include <vector>

#include "helper_common.h"

namespace {

void close_inherited_fds() {
  std::vector<int> fds;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    while (dirent* entry = ::readdir(dir)) {
      int fd = std::atoi(entry->d_name);
      if (fd > 2 && fd != ::dirfd(dir)) fds.push_back(fd);
    }
    ::closedir(dir);
  }
  for (int fd : fds) ::close(fd);
}

}  // namespace

int main() {
  memdx::test::die_with_parent();
  close_inherited_fds();
  bool ok = ::socket(AF_INET, SOCK_STREAM, 0) >= 0 && ::socket(AF_INET, SOCK_DGRAM, 0) >= 0 &&
            ::socket(AF_INET6, SOCK_STREAM, 0) >= 0 && ::socket(AF_UNIX, SOCK_STREAM, 0) >= 0 &&
            ::socket(AF_UNIX, SOCK_DGRAM, 0) >= 0;
  for (int i = 0; i < 3 && ok; ++i) {
    int ends[2];
    ok = ::pipe(ends) == 0;
    if (ok) ::close(ends[1]);  // keep one end: 3 pipe fds in all
  }
  ok = ok && ::memfd_create("memdx-test-a", 0) >= 0 && ::memfd_create("memdx-test-b", 0) >= 0;
  if (!ok) return 1;
  memdx::test::signal_ready();
  ::close(STDIN_FILENO);
  ::close(STDOUT_FILENO);
  ::close(STDERR_FILENO);
  for (;;) ::pause();
}
