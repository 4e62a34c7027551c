// memdx_tracee_once: a leak of the program's own beside blocks the C and C++ runtime allocate once
// and keep by design: stdout's buffer (printf to a pipe), the time zone (localtime), and
// libstdc++'s exception pool (before main). Prints "once" and the year of the epoch.
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "tracee_common.h"

extern "C" __attribute__((noinline)) void* leak_here() {
  void* block = std::malloc(1000);  // site: leak_here
  memdx::tracee::escape(block);
  return block;
}

int main() {
  leak_here();
  std::time_t epoch = 0;
  std::tm* local = std::localtime(&epoch);
  std::printf("once %d\n", local ? local->tm_year + 1900 : 0);
  return 0;
}
