// One program, many memory behaviours, for the run/watch integration tests. Usage:
//   memdx_helper_behave MODE SECONDS
// Rates differ on purpose from the public zoo's: the detectors must hold in general.
//   flat      a bounded working set, churned every tick
//   anon      anonymous memory mapped directly and kept: +1.5 MiB/s
//   heap      malloc'd blocks kept in a vector: +2 MiB/s
//   fds       a pipe pair leaked every tick: +20 fds/s
//   threads   a sleeping thread started every 250 ms and never joined
//   shmem     memfd segments filled and kept mapped: +3 MiB/s
//   file      a file appended and read back through a shared mapping: page cache only
//   sawtooth  a batch grows to ~24 MiB and is dropped, again and again
//   child     the parent stays flat; a forked child grows its heap
//   startup   256 MiB allocated and touched at once, then flat
//   retention 160 MiB of small blocks allocated, 63 in 64 freed at once: the allocator keeps the
//             pages (the survivors pin them), then small churn
//   reserve   64 GiB of address space reserved (PROT_NONE), never touched, then flat
//   tree      300 children that sleep, the parent waits for them: a wide, bounded tree
//   exit7     exits with status 7 after SECONDS
//   sigterm   kills itself with SIGTERM after SECONDS
//   marker    creates the file named by $MEMDX_TEST_MARKER, then runs flat
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using Tick = void (*)(long);

void run_for(double seconds, int ticks_per_second, Tick tick) {
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  for (long t = 0; std::chrono::steady_clock::now() < end; ++t) {
    tick(t);
    std::this_thread::sleep_for(std::chrono::milliseconds(1000 / ticks_per_second));
  }
}

void touch(void* p, size_t bytes) {
  std::memset(p, 0x3c, bytes);
}

std::vector<std::vector<char>> g_kept;
std::vector<char*> g_batch;

void tick_flat(long t) {
  // 8 MiB working set replaced in slices: bounded.
  if (g_kept.size() < 64) g_kept.emplace_back(128 << 10, 'f');
  g_kept[static_cast<size_t>(t) % g_kept.size()].assign(128 << 10, static_cast<char>(t));
}

void tick_anon(long) {
  void* p = ::mmap(nullptr, 96 << 10, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p != MAP_FAILED) touch(p, 96 << 10);
}

void tick_heap(long) {
  g_kept.emplace_back(128 << 10, 'h');
}

void tick_fds(long) {
  int ends[2];
  if (::pipe(ends) != 0) std::_Exit(3);
}

void tick_threads(long t) {
  if (t % 4 == 0) std::thread([] { std::this_thread::sleep_for(std::chrono::hours(1)); }).detach();
}

void tick_shmem(long) {
  int fd = ::memfd_create("behave", 0);
  if (fd < 0 || ::ftruncate(fd, 192 << 10) != 0) std::_Exit(3);
  void* p = ::mmap(nullptr, 192 << 10, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (p != MAP_FAILED) touch(p, 192 << 10);
}

int g_file = -1;
void* g_map = nullptr;
size_t g_map_bytes = 0;
long g_sum = 0;
void tick_file(long) {
  // A static chunk: the heap stays flat, so only the page cache grows (a 1 MiB temporary on the
  // heap would be caught live now and then by the traced heap's 100 ms points).
  static std::vector<char> chunk(1 << 20, 'r');
  if (::write(g_file, chunk.data(), chunk.size()) < 0) std::_Exit(3);
  if (g_map) ::munmap(g_map, g_map_bytes);
  g_map_bytes = static_cast<size_t>(::lseek(g_file, 0, SEEK_END));
  g_map = ::mmap(nullptr, g_map_bytes, PROT_READ, MAP_SHARED, g_file, 0);
  for (size_t off = 0; off < g_map_bytes; off += 4096) g_sum += static_cast<const char*>(g_map)[off];
}

void tick_sawtooth(long t) {
  for (int i = 0; i < 40; ++i) {
    char* p = static_cast<char*>(std::malloc(40000));
    touch(p, 40000);
    g_batch.push_back(p);
  }
  if (t % 15 == 14) {
    for (char* p : g_batch) std::free(p);
    g_batch.clear();
  }
}

// Small blocks scattered over the whole heap keep every page of it in use for glibc: freeing the
// rest cannot return them to the system (only the top of the heap is trimmed).
std::vector<char*> g_survivors;
void fragment_heap() {
  constexpr size_t kBlockBytes = 2048, kBlocks = (160u << 20) / kBlockBytes;
  std::vector<char*> blocks(kBlocks);
  for (char*& p : blocks) {
    p = static_cast<char*>(std::malloc(kBlockBytes));
    touch(p, kBlockBytes);
  }
  for (size_t i = 0; i < kBlocks; ++i) {
    if (i % 64 == 0)
      g_survivors.push_back(blocks[i]);
    else
      std::free(blocks[i]);
  }
}

void tick_churn(long t) {
  for (int i = 0; i < 8; ++i) {
    char* p = static_cast<char*>(std::malloc(512 + static_cast<size_t>(t % 7) * 64));
    touch(p, 512);
    std::free(p);
  }
}

int run_mode(const std::string& mode, double seconds) {
  if (mode == "flat")
    run_for(seconds, 16, tick_flat);
  else if (mode == "anon")
    run_for(seconds, 16, tick_anon);
  else if (mode == "heap")
    run_for(seconds, 16, tick_heap);
  else if (mode == "fds")
    run_for(seconds, 20, tick_fds);
  else if (mode == "threads")
    run_for(seconds, 16, tick_threads);
  else if (mode == "shmem")
    run_for(seconds, 16, tick_shmem);
  else if (mode == "sawtooth")
    run_for(seconds, 16, tick_sawtooth);
  else if (mode == "file") {
    std::string path = "/tmp/memdx-behave-" + std::to_string(::getpid());
    g_file = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    ::unlink(path.c_str());
    run_for(seconds, 8, tick_file);
  } else if (mode == "child") {
    pid_t child = ::fork();
    if (child == 0) {
      run_for(seconds, 16, tick_heap);
      std::_Exit(0);
    }
    run_for(seconds, 16, tick_flat);
    ::waitpid(child, nullptr, 0);
  } else if (mode == "startup") {
    void* p = ::mmap(nullptr, 256u << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 3;
    touch(p, 256u << 20);
    run_for(seconds, 16, tick_flat);
  } else if (mode == "retention") {
    fragment_heap();
    run_for(seconds, 16, tick_churn);
  } else if (mode == "reserve") {
    void* p = ::mmap(nullptr, size_t{64} << 30, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return 3;
    run_for(seconds, 16, tick_flat);
  } else if (mode == "tree") {
    for (int i = 0; i < 300; ++i) {
      if (::fork() == 0) {
        std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
        std::_Exit(0);
      }
    }
    while (::wait(nullptr) > 0) {
    }
  } else if (mode == "exit7") {
    run_for(seconds, 16, tick_flat);
    return 7;
  } else if (mode == "sigterm") {
    run_for(seconds, 16, tick_flat);
    ::raise(SIGTERM);
  } else if (mode == "marker") {
    const char* marker = std::getenv("MEMDX_TEST_MARKER");
    if (marker) ::close(::open(marker, O_CREAT | O_WRONLY, 0600));
    run_for(seconds, 16, tick_flat);
  } else {
    return 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  int code = run_mode(argv[1], std::atof(argv[2]));
  std::_Exit(code);  // detached threads (mode "threads") must not hold up the exit
}
