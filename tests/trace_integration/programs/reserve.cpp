// memdx_tracee_reserve: reserves 16 GiB of address space (PROT_NONE), makes 64 MiB of it
// accessible with mprotect and 32 MiB more by mapping over it (MAP_FIXED), writes to all 96 MiB,
// and keeps everything to the end, as garbage-collected heaps and JITs do. Memory in use: 96 MiB;
// address space: 16 GiB. Prints "reserved".
#include <sys/mman.h>

#include <cstdint>
#include <cstdio>
#include <cstring>

#include "tracee_common.h"

using memdx::tracee::escape;
using memdx::tracee::say;

namespace {
constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kReservedBytes = size_t{16} << 30;
constexpr size_t kProtectedBytes = 64 * kMiB;
constexpr size_t kFixedBytes = 32 * kMiB;
}  // namespace

extern "C" {

__attribute__((noinline)) void* reserve_space() {
  void* space = ::mmap(nullptr, kReservedBytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
                       0);  // site: reserve_space
  escape(space);
  return space;
}

__attribute__((noinline)) void* commit_fixed(void* at) {
  void* part = ::mmap(at, kFixedBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
                      0);  // site: commit_fixed
  escape(part);
  return part;
}

}  // extern "C"

int main() {
  auto* space = static_cast<char*>(reserve_space());
  if (space == MAP_FAILED) {
    std::perror("mmap");
    return 1;
  }
  if (::mprotect(space, kProtectedBytes, PROT_READ | PROT_WRITE) != 0) {
    std::perror("mprotect");
    return 1;
  }
  std::memset(space, 1, kProtectedBytes);
  char* fixed = static_cast<char*>(commit_fixed(space + kProtectedBytes));
  if (fixed == MAP_FAILED) {
    std::perror("mmap fixed");
    return 1;
  }
  std::memset(fixed, 2, kFixedBytes);
  say("reserved");
  return 0;
}
