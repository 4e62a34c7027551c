// A process tree for `memdx inspect --tree`: COUNT descendants under this process.
//
//   memdx_fixture_tree [COUNT=200]
//
// The descendants come in groups of ten, a child with nine grandchildren (200 = 20 x 10), so the
// tree has depth as well as breadth. Each touches a little private memory and sleeps. Once all
// of them are up this process prints "ready <its pid>" on stdout; at EOF on its stdin it kills
// and reaps every one of them and exits. Descendants die with their parent (PR_SET_PDEATHSIG),
// so no sleeper outlives a killed fixture.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

constexpr unsigned long kDefaultCount = 200;
constexpr unsigned long kGroupSize = 10;  // one child and its nine grandchildren
constexpr size_t kTouchedBytes = size_t{64} << 10;

bool parse_count(int argc, char** argv, unsigned long& count) {
  count = kDefaultCount;
  if (argc < 2) return true;
  char* end = nullptr;
  count = std::strtoul(argv[1], &end, 10);
  return *end == '\0' && count > 0;
}

// Private, resident, and not shared with the parent by copy-on-write.
void touch_memory() {
  void* p = ::mmap(nullptr, kTouchedBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p != MAP_FAILED) std::memset(p, 0x5a, kTouchedBytes);
}

// Called first in every forked process: die with the parent, including when the parent died
// before the prctl took effect (then getppid() is no longer the pid we were forked from).
// stdin and stdout go to /dev/null so that only the root holds the pipes of whoever started
// it: a reader of its stdout sees EOF when the root exits.
void become_descendant(pid_t parent) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(1);
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0) ::_exit(1);
  ::dup2(null_fd, STDIN_FILENO);
  ::dup2(null_fd, STDOUT_FILENO);
  ::close(null_fd);
}

// Tells the root "this pid is up". 4-byte writes to a pipe are atomic, so concurrent
// writers never interleave.
void report_ready(int ready_fd) {
  pid_t self = ::getpid();
  if (::write(ready_fd, &self, sizeof(self)) != static_cast<ssize_t>(sizeof(self))) ::_exit(1);
}

[[noreturn]] void sleep_forever() {
  for (;;) ::pause();
}

[[noreturn]] void run_grandchild(pid_t parent, int ready_fd) {
  become_descendant(parent);
  touch_memory();
  report_ready(ready_fd);
  sleep_forever();
}

[[noreturn]] void run_child(pid_t parent, int ready_fd, unsigned long grandchildren) {
  become_descendant(parent);
  pid_t self = ::getpid();
  for (unsigned long i = 0; i < grandchildren; ++i) {
    pid_t pid = ::fork();
    if (pid < 0) ::_exit(1);  // the root sees the missing pids and gives up
    if (pid == 0) run_grandchild(self, ready_fd);
  }
  touch_memory();
  report_ready(ready_fd);
  sleep_forever();
}

// Forks the groups; returns the direct children that were started.
std::vector<pid_t> fork_children(unsigned long count, int ready_fd) {
  pid_t self = ::getpid();
  std::vector<pid_t> children;
  for (unsigned long first = 0; first < count; first += kGroupSize) {
    unsigned long group = count - first < kGroupSize ? count - first : kGroupSize;
    pid_t pid = ::fork();
    if (pid < 0) {
      std::fprintf(stderr, "memdx_fixture_tree: fork failed: %s\n", std::strerror(errno));
      break;
    }
    if (pid == 0) run_child(self, ready_fd, group - 1);
    children.push_back(pid);
  }
  return children;
}

// Reads one pid per descendant. Returns fewer than `count` when some never came up within the
// deadline (a fork failed further down, or the machine is thrashing).
std::vector<pid_t> collect_ready(int ready_fd, unsigned long count) {
  constexpr int kDeadlineMs = 60'000;
  std::vector<pid_t> pids;
  while (pids.size() < count) {
    pollfd readable = {ready_fd, POLLIN, 0};
    int polled = ::poll(&readable, 1, kDeadlineMs);
    if (polled < 0 && errno == EINTR) continue;
    if (polled <= 0) break;
    pid_t pid = 0;
    ssize_t n = ::read(ready_fd, &pid, sizeof(pid));
    if (n < 0 && errno == EINTR) continue;
    if (n != static_cast<ssize_t>(sizeof(pid))) break;
    pids.push_back(pid);
  }
  return pids;
}

void wait_for_stdin_eof() {
  char buffer[256];
  for (;;) {
    ssize_t n = ::read(STDIN_FILENO, buffer, sizeof(buffer));
    if (n == 0 || (n < 0 && errno != EINTR)) return;
  }
}

// As subreaper this process inherits the grandchildren when their parent dies, so waiting
// until ECHILD reaps the whole tree.
void kill_and_reap(const std::vector<pid_t>& pids) {
  for (pid_t pid : pids) ::kill(pid, SIGKILL);
  for (;;) {
    pid_t pid = ::waitpid(-1, nullptr, 0);
    if (pid < 0 && errno != EINTR) return;
  }
}

}  // namespace

int main(int argc, char** argv) {
  unsigned long count = 0;
  if (!parse_count(argc, argv, count)) {
    std::fprintf(stderr, "usage: memdx_fixture_tree [COUNT]\n");
    return 2;
  }
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  int ready[2];
  if (::pipe(ready) != 0) {
    std::fprintf(stderr, "memdx_fixture_tree: pipe failed: %s\n", std::strerror(errno));
    return 1;
  }
  std::fflush(stdout);  // nothing buffered may be written twice by the children
  std::vector<pid_t> children = fork_children(count, ready[1]);
  ::close(ready[1]);  // only the descendants hold the write end: EOF once they all exit
  std::vector<pid_t> pids = collect_ready(ready[0], count);
  if (pids.size() < count) {
    std::fprintf(stderr, "memdx_fixture_tree: only %zu of %lu processes started\n", pids.size(), count);
    // A child that never reported is killed by its pid; grandchildren follow their parents.
    pids.insert(pids.end(), children.begin(), children.end());
    kill_and_reap(pids);
    return 1;
  }
  std::printf("ready %d\n", static_cast<int>(::getpid()));
  std::fflush(stdout);
  wait_for_stdin_eof();
  kill_and_reap(pids);
  return 0;
}
