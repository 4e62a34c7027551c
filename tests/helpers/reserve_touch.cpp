// Reserves 8 GiB of PROT_NONE address space and makes exactly 64 MiB of it resident.
#include <sys/mman.h>

#include <cstring>

#include "helper_common.h"

int main() {
  memdx::test::die_with_parent();
  constexpr size_t kReservedBytes = size_t{8} << 30;
  constexpr size_t kTouchedBytes = size_t{64} << 20;
  void* base = ::mmap(nullptr, kReservedBytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) return 1;
  if (::mprotect(base, kTouchedBytes, PROT_READ | PROT_WRITE) != 0) return 1;
  std::memset(base, 0x5a, kTouchedBytes);
  memdx::test::signal_ready();
  memdx::test::wait_for_stdin_eof();
  return 0;
}
