// memdx_bench_pressure [RUNS=7]: how long PressureMonitor takes to call back once memory pressure
// starts, per source. Each run makes a fresh 96 MiB child cgroup, starts the monitor in a process
// inside it, then a process that fills the limit with anonymous memory and re-reads a 64 MiB file
// (its page cache thrashes; for polling it only fills the limit). The clock starts when that
// process has its memory and begins to read (or, for polling, has filled the limit) and stops
// when on_change runs; both stamps are CLOCK_MONOTONIC (steady_clock), across processes.
// Needs root (cgroup creation); prints the median, min and max per source.
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <memdx/error.h>
#include <memdx/pressure.h>

#include "pressure/test_cgroup.h"

namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kLimitBytes = 96 * kMiB;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Waits for one int64 on `fd` within `timeout_ms`.
std::optional<int64_t> receive(int fd, int timeout_ms) {
  pollfd waiting{fd, POLLIN, 0};
  if (::poll(&waiting, 1, timeout_ms) <= 0) return std::nullopt;
  int64_t value = 0;
  if (::read(fd, &value, sizeof(value)) != static_cast<ssize_t>(sizeof(value))) return std::nullopt;
  return value;
}

void send(int fd, int64_t value) {
  if (::write(fd, &value, sizeof(value)) != static_cast<ssize_t>(sizeof(value))) ::_exit(4);
}

// The monitor's process: 0 when it is watching, then the time of the first raised level.
[[noreturn]] void run_monitor(const memdx_test::TestCgroup& cgroup, memdx::PressureSource source, int report) {
  if (!cgroup.enter()) ::_exit(1);
  memdx::PressureOptions options;
  options.force_source = source;
  if (source == memdx::PressureSource::kPolling) {
    options.poll_interval = std::chrono::milliseconds(100);
    options.polling_moderate_available_ratio = 0.25;
  }
  try {
    memdx::PressureMonitor monitor(
        [report](memdx::PressureLevel level, const memdx::PressureReading&) {
          if (level != memdx::PressureLevel::kNone) send(report, now_ns());
        },
        options);
    send(report, 0);
    ::pause();
  } catch (const memdx::Error& e) {
    std::fprintf(stderr, "%s: %s\n", memdx::to_string(source), e.what());
    ::_exit(1);
  }
  ::_exit(0);
}

// The pressure's process: the time it starts thrashing (or has filled the limit), then it goes on.
[[noreturn]] void run_hog(const memdx_test::TestCgroup& cgroup, const std::string& file, bool thrash, int report) {
  if (!cgroup.enter()) ::_exit(1);
  uint64_t anon_bytes = kLimitBytes - (thrash ? 10 : 8) * kMiB;
  void* anon = ::mmap(nullptr, anon_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (anon == MAP_FAILED) ::_exit(2);
  // Polling sees the fill itself, so its clock starts before it; the PSI and v1 sources see the
  // reclaim that the reads cause, so theirs starts after it.
  if (!thrash) send(report, now_ns());
  std::memset(anon, 1, anon_bytes);
  if (thrash) send(report, now_ns());
  std::vector<char> buffer(kMiB);
  if (!thrash) {
    ::pause();
    ::_exit(0);
  }
  while (true) {
    int fd = ::open(file.c_str(), O_RDONLY);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    while (::read(fd, buffer.data(), buffer.size()) > 0) {
    }
    ::close(fd);
  }
}

pid_t fork_with_pipe(int& read_end) {
  int fds[2];
  if (::pipe(fds) != 0) std::exit(1);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::close(fds[0]);
    read_end = fds[1];
    return 0;
  }
  ::close(fds[1]);
  read_end = fds[0];
  return pid;
}

// One run: milliseconds from the pressure's start to the callback, or nullopt.
std::optional<double> one_run(memdx::PressureSource source, const std::string& file) {
  memdx_test::TestCgroup cgroup(kLimitBytes);
  if (!cgroup.limited()) return std::nullopt;
  int monitor_fd = -1;
  pid_t monitor = fork_with_pipe(monitor_fd);
  if (monitor == 0) run_monitor(cgroup, source, monitor_fd);
  std::optional<double> reaction_ms;
  if (receive(monitor_fd, 10'000)) {
    int hog_fd = -1;
    bool thrash = source != memdx::PressureSource::kPolling;
    pid_t hog = fork_with_pipe(hog_fd);
    if (hog == 0) run_hog(cgroup, file, thrash, hog_fd);
    auto started = receive(hog_fd, 10'000);
    auto called = receive(monitor_fd, 20'000);
    if (started && called) reaction_ms = static_cast<double>(*called - *started) / 1e6;
    ::kill(hog, SIGKILL);
    ::waitpid(hog, nullptr, 0);
    ::close(hog_fd);
  }
  ::kill(monitor, SIGKILL);
  ::waitpid(monitor, nullptr, 0);
  ::close(monitor_fd);
  return reaction_ms;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = argc > 1 ? std::atoi(argv[1]) : 7;
  char pattern[] = "/var/tmp/memdx-pressure-bench-XXXXXX";
  int fd = ::mkstemp(pattern);
  std::vector<char> chunk(kMiB, 'x');
  for (int i = 0; i < 64; ++i) {
    if (::write(fd, chunk.data(), chunk.size()) < 0) return 1;
  }
  ::fsync(fd);
  ::close(fd);
  std::printf("%-18s %6s %10s %10s %10s\n", "source", "runs", "median_ms", "min_ms", "max_ms");
  for (memdx::PressureSource source : {memdx::PressureSource::kCgroupPsi, memdx::PressureSource::kSystemPsi,
                                       memdx::PressureSource::kCgroupV1Events, memdx::PressureSource::kPolling}) {
    std::vector<double> times;
    for (int run = 0; run < runs; ++run) {
      if (auto ms = one_run(source, pattern)) times.push_back(*ms);
    }
    if (times.empty()) {
      std::printf("%-18s %6s unavailable here\n", memdx::to_string(source), "0");
      continue;
    }
    std::sort(times.begin(), times.end());
    std::printf("%-18s %6zu %10.1f %10.1f %10.1f\n", memdx::to_string(source), times.size(), times[times.size() / 2],
                times.front(), times.back());
  }
  ::unlink(pattern);
  return 0;
}
