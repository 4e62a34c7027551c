// Leaves one child as a zombie (exited, never reaped) and prints its pid.
#include <sys/wait.h>

#include <cstdio>

#include "helper_common.h"

int main() {
  memdx::test::die_with_parent();
  pid_t child = ::fork();
  if (child < 0) return 1;
  if (child == 0) ::_exit(7);
  // Wait until it has exited, without reaping it.
  siginfo_t info{};
  if (::waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOWAIT) != 0) return 1;
  std::printf("zombie %d\n", child);
  memdx::test::signal_ready();
  memdx::test::wait_for_stdin_eof();
  return 0;
}
