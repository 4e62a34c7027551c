// Programs that once made memdx lose data, hang or lie, for tests/integration/trust_test.cpp.
//
//   daemon SECONDS       prints "started", then double-forks: the grandchild (setsid, its parent
//                        gone) leaks 64 KiB every 50 ms from daemon_leak() for SECONDS; the
//                        program itself exits 0 at once; every 500 ms the daemon starts a worker
//                        (fork + exec of this program's "sleep 0.05")
//   idle_thread          a thread makes 1,000 allocations of 100 B from idle_allocations() (kept)
//                        and then blocks for good; main prints "ready" and waits to be killed
//   close_all HOW        allocates, closes every descriptor but 0-2 (HOW: loop, close_range,
//                        closefrom, dup2), then makes 500 allocations from after_closing(),
//                        forks a child that allocates too, and exits 7
//   tree N SECONDS       starts N children that each sleep SECONDS, waits for them, exits 0
//   fds SECONDS          opens /dev/null 50 times a second for SECONDS (a descriptor leak)
//   sleep SECONDS        sleeps, allocating nothing (a quiet process to connect beside)
//   unshare vm|user      allocates, then unshare(CLONE_VM) 200 times, or unshare(CLONE_NEWUSER)
//                        once, which a process of more than one thread is refused: prints
//                        "unshare ok" or why not
#include <fcntl.h>
#include <linux/close_range.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

std::vector<void*> g_kept;
// Where the counted allocations are kept: a fixed array, so that no container's growth adds
// allocations of its own to the counted site.
void* g_blocks[1000];

// Every half second a child runs this program again (fork + exec: a new image, whose tracer
// connects anew), as a daemon's workers would.
void start_worker() {
  if (::fork() != 0) return;
  ::execl("/proc/self/exe", "trust_target", "sleep", "0.05", static_cast<char*>(nullptr));
  ::_exit(127);
}

__attribute__((noinline)) void daemon_leak(double seconds) {
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  for (int tick = 0; std::chrono::steady_clock::now() < end; ++tick) {
    void* block = std::malloc(64 << 10);
    std::memset(block, 0x5a, 64 << 10);
    g_kept.push_back(block);
    if (tick % 10 == 9) start_worker();
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

int run_daemon(double seconds) {
  std::puts("started");
  std::fflush(stdout);
  pid_t child = ::fork();
  if (child != 0) {
    ::waitpid(child, nullptr, 0);
    return 0;
  }
  ::setsid();
  if (::fork() != 0) ::_exit(0);
  // The daemon: no terminal, its own session, reparented to the nearest subreaper.
  int null = ::open("/dev/null", O_RDWR);
  ::dup2(null, 0);
  ::dup2(null, 1);
  ::dup2(null, 2);
  daemon_leak(seconds);
  ::_exit(0);
}

__attribute__((noinline)) void idle_allocations() {
  for (void*& block : g_blocks) block = std::malloc(100);
}

int run_idle_thread() {
  std::thread worker([] {
    idle_allocations();
    for (;;) ::pause();
  });
  worker.detach();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::puts("ready");
  std::fflush(stdout);
  for (;;) ::pause();
}

void close_everything(const std::string& how) {
  if (how == "loop") {
    for (int fd = 3; fd < 65536; ++fd) ::close(fd);
  } else if (how == "close_range") {
    ::close_range(3, ~0u, 0);
  } else if (how == "closefrom") {
    ::closefrom(3);
  } else if (how == "dup2") {
    // Every number the tracer might hold gets another file.
    int null = ::open("/dev/null", O_RDONLY);
    for (int fd = 3; fd < 1024; ++fd) {
      if (fd != null) ::dup2(null, fd);
    }
  }
}

__attribute__((noinline)) void after_closing() {
  for (int i = 0; i < 500; ++i) g_blocks[i] = std::malloc(200);
}

int run_close_all(const std::string& how) {
  for (int i = 0; i < 100; ++i) g_kept.push_back(std::malloc(300));
  close_everything(how);
  after_closing();
  pid_t child = ::fork();
  if (child == 0) {
    after_closing();
    std::exit(0);
  }
  ::waitpid(child, nullptr, 0);
  std::exit(7);
}

int run_tree(int count, double seconds) {
  std::vector<pid_t> children;
  for (int i = 0; i < count; ++i) {
    pid_t child = ::fork();
    if (child == 0) {
      std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
      ::_exit(0);
    }
    if (child > 0) children.push_back(child);
  }
  for (pid_t child : children) ::waitpid(child, nullptr, 0);
  return 0;
}

int run_fds(double seconds) {
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    ::open("/dev/null", O_RDONLY);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return 0;
}

// unshare(CLONE_VM) asks nothing of the kernel but that the process be single-threaded (no
// privilege, no namespace), so it shows, on any machine, whether the tracer's own thread is out of
// the way. A user namespace is what real programs (sandboxes, unshare -U) ask for. Done 200 times:
// the tracer stops and restarts its thread around each, and each must find it fully gone.
int run_unshare(const std::string& what) {
  const int flags = what == "user" ? CLONE_NEWUSER : CLONE_VM;
  const int times = what == "user" ? 1 : 200;
  for (int i = 0; i < times; ++i) {
    g_blocks[i % 1000] = std::malloc(100);
    if (::unshare(flags) != 0) {
      std::printf("unshare failed at %d: %s\n", i, std::strerror(errno));
      return 1;
    }
  }
  std::puts("unshare ok");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  double seconds = argc > 2 ? std::atof(argv[2]) : 1;
  if (mode == "daemon") return run_daemon(seconds);
  if (mode == "idle_thread") return run_idle_thread();
  if (mode == "close_all") return run_close_all(argc > 2 ? argv[2] : "loop");
  if (mode == "tree" && argc > 3) return run_tree(std::atoi(argv[2]), std::atof(argv[3]));
  if (mode == "fds") return run_fds(seconds);
  if (mode == "unshare") return run_unshare(argc > 2 ? argv[2] : "vm");
  if (mode == "sleep") {
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    return 0;
  }
  std::fprintf(stderr, "usage: %s daemon|idle_thread|close_all|tree|fds|sleep ...\n", argv[0]);
  return 2;
}
