// A parent and 3 forked children sharing one 96 MiB MAP_SHARED anonymous mapping, every page
// of it touched in every process, so each RSS shows 96 MiB while the tree's PSS adds up to
// 96 MiB once (plus each process's small private memory).
#include <sys/mman.h>
#include <sys/wait.h>

#include <cstring>

#include "helper_common.h"

int main() {
  memdx::test::die_with_parent();
  constexpr size_t kSharedBytes = size_t{96} << 20;
  constexpr int kChildren = 3;
  auto* shared = static_cast<volatile char*>(
      ::mmap(nullptr, kSharedBytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  if (shared == MAP_FAILED) return 1;
  std::memset(const_cast<char*>(shared), 0x11, kSharedBytes);

  int ready[2];
  if (::pipe(ready) != 0) return 1;
  pid_t children[kChildren];
  for (int i = 0; i < kChildren; ++i) {
    children[i] = ::fork();
    if (children[i] < 0) return 1;
    if (children[i] == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      // A fork does not copy page tables of shared mappings: fault every page in.
      long sum = 0;
      for (size_t offset = 0; offset < kSharedBytes; offset += 4096) sum += shared[offset];
      char byte = static_cast<char>(sum != 0);
      if (::write(ready[1], &byte, 1) != 1) ::_exit(1);
      for (;;) ::pause();
    }
  }
  for (int i = 0; i < kChildren; ++i) {
    char byte;
    if (::read(ready[0], &byte, 1) != 1) return 1;
  }
  memdx::test::signal_ready();
  memdx::test::wait_for_stdin_eof();
  for (pid_t child : children) ::kill(child, SIGKILL);
  for (pid_t child : children) ::waitpid(child, nullptr, 0);
  return 0;
}
