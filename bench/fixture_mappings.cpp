// A process with many anonymous mappings, the shape that makes `memdx inspect` read a huge smaps.
//
//   memdx_fixture_mappings [COUNT=10000]
//
// Maps COUNT one-page mappings that the kernel cannot merge, writes to each so every one is
// resident, prints "ready <pid>" on stdout and then lives until its stdin reaches EOF: the
// parent decides how long it lives by holding the other end of that pipe.
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

constexpr unsigned long kDefaultCount = 10000;

bool parse_count(int argc, char** argv, unsigned long& count) {
  count = kDefaultCount;
  if (argc < 2) return true;
  char* end = nullptr;
  count = std::strtoul(argv[1], &end, 10);
  return *end == '\0' && count > 0;
}

// One region split into COUNT VMAs by alternating rw / r-only protection: neighbours whose flags
// differ are never merged. Every page is written before its protection drops, so each VMA
// holds one resident private page (and smaps has real counters to print for it).
bool make_mappings(unsigned long count) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  void* base = ::mmap(nullptr, count * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) {
    std::fprintf(stderr, "memdx_fixture_mappings: mmap of %lu pages failed: %s\n", count, std::strerror(errno));
    return false;
  }
  char* bytes = static_cast<char*>(base);
  for (size_t i = 0; i < count; ++i) bytes[i * page] = static_cast<char>(i | 1);
  for (size_t i = 1; i < count; i += 2) {
    if (::mprotect(bytes + i * page, page, PROT_READ) != 0) {
      std::fprintf(stderr,
                   "memdx_fixture_mappings: mprotect failed after %zu mappings: %s "
                   "(see /proc/sys/vm/max_map_count)\n",
                   i, std::strerror(errno));
      return false;
    }
  }
  return true;
}

void wait_for_stdin_eof() {
  char buffer[256];
  for (;;) {
    ssize_t n = ::read(STDIN_FILENO, buffer, sizeof(buffer));
    if (n == 0 || (n < 0 && errno != EINTR)) return;
  }
}

}  // namespace

int main(int argc, char** argv) {
  unsigned long count = 0;
  if (!parse_count(argc, argv, count)) {
    std::fprintf(stderr, "usage: memdx_fixture_mappings [COUNT]\n");
    return 2;
  }
  if (!make_mappings(count)) return 1;
  std::printf("ready %d\n", static_cast<int>(::getpid()));
  std::fflush(stdout);
  wait_for_stdin_eof();
  return 0;
}
