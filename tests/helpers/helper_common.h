// Shared by the test helper programs: each builds a known memory layout, says "ready" on
// stdout, and lives until its stdin closes (or it is killed), so a test controls its life.
#pragma once

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>

namespace memdx::test {

// Dies with the test that started it, even if the test crashes.
inline void die_with_parent() {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() == 1) ::_exit(1);
}

inline void signal_ready() {
  std::fputs("ready\n", stdout);
  std::fflush(stdout);
}

// Blocks until the test closes our stdin.
inline void wait_for_stdin_eof() {
  char buffer[64];
  while (::read(STDIN_FILENO, buffer, sizeof(buffer)) > 0) {
  }
}

}  // namespace memdx::test
