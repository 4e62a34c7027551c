// Maps many small regions (so reading its smaps takes a while), says ready, then exits after
// argv[1] microseconds: a process that may vanish while memdx is reading it.
#include <sys/mman.h>

#include <cstdlib>

#include "helper_common.h"

int main(int argc, char** argv) {
  memdx::test::die_with_parent();
  long delay_us = argc > 1 ? std::atol(argv[1]) : 0;
  for (int i = 0; i < 4000; ++i) {
    int prot = (i % 2 == 0) ? PROT_READ | PROT_WRITE : PROT_READ;
    void* p = ::mmap(nullptr, 4096, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 1;
  }
  memdx::test::signal_ready();
  ::usleep(static_cast<useconds_t>(delay_us));
  return 0;
}
