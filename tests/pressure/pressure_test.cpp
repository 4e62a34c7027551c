// PressureMonitor under real kernel memory pressure: a child cgroup limited to 96 MiB, a process in
// it that fills the limit with anonymous memory and re-reads a file larger than the room left (its
// page cache thrashes), and the monitor running in another process of the same cgroup, so that
// its own-cgroup sources are that cgroup. Each source is checked to rise and, once the pressure
// stops, to fall back to kNone after the hysteresis.
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <memdx/error.h>
#include <memdx/governor.h>
#include <memdx/pressure.h>

#include "pressure/test_cgroup.h"

namespace {

using memdx::PressureLevel;
using memdx::PressureMonitor;
using memdx::PressureOptions;
using memdx::PressureReading;
using memdx::PressureSource;

using Environment = std::vector<std::pair<std::string, std::string>>;

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kLimitBytes = 96 * kMiB;
constexpr size_t kThrashFileBytes = 64 * kMiB;

// What the monitor's process reports over its pipe. Small enough to be written atomically.
struct Message {
  enum Kind : int { kReady, kChange, kFailed } kind = kReady;
  int level = 0;
  int source = 0;
  char text[400] = {};
};

void send(int fd, const Message& message) {
  if (::write(fd, &message, sizeof(message)) != static_cast<ssize_t>(sizeof(message))) ::_exit(4);
}

// The next message within `timeout`, or nullopt.
std::optional<Message> receive(int fd, std::chrono::milliseconds timeout) {
  pollfd waiting{fd, POLLIN, 0};
  if (::poll(&waiting, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
  Message message;
  if (::read(fd, &message, sizeof(message)) != static_cast<ssize_t>(sizeof(message))) return std::nullopt;
  return message;
}

class PressureTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char pattern[] = "/var/tmp/memdx-pressure-XXXXXX";
    int fd = ::mkstemp(pattern);
    ASSERT_GE(fd, 0);
    thrash_file_ = pattern;
    std::vector<char> chunk(kMiB, 'x');
    for (size_t written = 0; written < kThrashFileBytes; written += chunk.size()) {
      ASSERT_EQ(::write(fd, chunk.data(), chunk.size()), static_cast<ssize_t>(chunk.size()));
    }
    ::fsync(fd);
    ::close(fd);
  }
  static void TearDownTestSuite() { ::unlink(thrash_file_.c_str()); }

  void TearDown() override {
    for (pid_t pid : {hog_, monitor_}) {
      if (pid <= 0) continue;
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    if (control_ >= 0) ::close(control_);
    if (report_ >= 0) ::close(report_);
  }

  // Forks the process that runs the monitor inside `cgroup`; returns its first message.
  // With `child`, in that child cgroup of `cgroup` instead.
  std::optional<Message> start_monitor(const memdx_test::TestCgroup& cgroup, const PressureOptions& options,
                                       const Environment& environment, const std::string& child = "") {
    return start_child(environment,
                       [&](int report, int control) { run_monitor(cgroup, child, options, report, control); });
  }

  // Forks the process the test watches (the monitor's, or the governed one), with `environment`
  // and no inherited pressure watch, connected by a report pipe and a control pipe (the child
  // ends when the control pipe closes); returns its first message.
  std::optional<Message> start_child(const Environment& environment, const std::function<void(int, int)>& run) {
    int report[2];
    int control[2];
    if (::pipe(report) != 0 || ::pipe(control) != 0) return std::nullopt;
    monitor_ = ::fork();
    if (monitor_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::close(report[0]);
      ::close(control[1]);
      ::unsetenv("MEMORY_PRESSURE_WATCH");
      ::unsetenv("MEMORY_PRESSURE_WRITE");
      for (const auto& [name, value] : environment) ::setenv(name.c_str(), value.c_str(), 1);
      run(report[1], control[0]);
      ::_exit(0);
    }
    ::close(report[1]);
    ::close(control[0]);
    report_ = report[0];
    control_ = control[1];
    return receive(report_, std::chrono::seconds(10));
  }

  // Tells the test which source the monitor uses, then waits until the test closes `control`.
  static void ready_then_wait(int report, int control, const PressureMonitor& monitor) {
    Message message;
    message.source = static_cast<int>(monitor.source());
    std::snprintf(message.text, sizeof(message.text), "%s", monitor.source_description().c_str());
    send(report, message);
    char byte = 0;
    while (::read(control, &byte, 1) > 0) {
    }
  }

  [[noreturn]] static void fail(int report, const char* what) {
    Message message;
    message.kind = Message::kFailed;
    std::snprintf(message.text, sizeof(message.text), "%s", what);
    send(report, message);
    ::_exit(1);
  }

  [[noreturn]] static void run_monitor(const memdx_test::TestCgroup& cgroup, const std::string& child,
                                       const PressureOptions& options, int report, int control) {
    if (!(child.empty() ? cgroup.enter() : cgroup.enter_child(child))) fail(report, "cannot enter the test cgroup");
    try {
      PressureMonitor monitor(
          [report](PressureLevel level, const PressureReading& reading) {
            Message change;
            change.kind = Message::kChange;
            change.level = static_cast<int>(level);
            change.source = static_cast<int>(reading.source);
            std::snprintf(change.text, sizeof(change.text), "some10=%.2f recent=%.2f avail=%llu",
                          reading.some_avg10_percent.value_or(-1), reading.some_recent_percent.value_or(-1),
                          static_cast<unsigned long long>(reading.available_bytes.value_or(0)));
            send(report, change);
          },
          options);
      ready_then_wait(report, control, monitor);
    } catch (const memdx::Error& e) {
      fail(report, e.what());
    }
    ::_exit(0);
  }

  // A process in `cgroup` that holds a 32 MiB "model" under a Governor fed by its own
  // PressureMonitor, and reports each of the governor's decisions (kind in `level`, text).
  std::optional<Message> start_governed(const memdx_test::TestCgroup& cgroup) {
    return start_child({}, [&](int report, int control) { run_governed(cgroup, report, control); });
  }

  [[noreturn]] static void run_governed(const memdx_test::TestCgroup& cgroup, int report, int control) {
    if (!cgroup.enter()) fail(report, "cannot enter the test cgroup");
    constexpr uint64_t kModelBytes = 32 * kMiB;
    auto* model =
        static_cast<char*>(::mmap(nullptr, kModelBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (model == MAP_FAILED) ::_exit(2);
    std::memset(model, 7, kModelBytes);
    try {
      memdx::GovernorOptions governor_options;
      governor_options.on_decision = [report](const memdx::GovernorDecision& d) {
        Message decision;
        decision.kind = Message::kChange;
        decision.level = static_cast<int>(d.kind);
        std::snprintf(decision.text, sizeof(decision.text), "%s", d.text.c_str());
        send(report, decision);
      };
      memdx::Governor governor(governor_options);
      governor.add({"model", kModelBytes, 0, [model] {
                      ::munmap(model, kModelBytes);
                      return kModelBytes;
                    }});
      PressureMonitor monitor(
          [&governor](PressureLevel level, const PressureReading&) { governor.on_pressure(level); });
      ready_then_wait(report, control, monitor);
    } catch (const memdx::Error& e) {
      fail(report, e.what());
    }
    ::_exit(0);
  }

  // Forks the process that makes the pressure: anonymous memory up to `anon_bytes`, then, when
  // `thrash`, reading the file over and over with its cache dropped first so every page is
  // charged here and must be reclaimed to make room for the next.
  void start_hog(const memdx_test::TestCgroup& cgroup, uint64_t anon_bytes, bool thrash) {
    hog_ = ::fork();
    if (hog_ != 0) return;
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (!cgroup.enter()) ::_exit(1);
    void* anon = ::mmap(nullptr, anon_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (anon == MAP_FAILED) ::_exit(2);
    std::memset(anon, 1, anon_bytes);
    std::vector<char> buffer(kMiB);
    while (true) {
      if (!thrash) {
        ::pause();
        continue;
      }
      int fd = ::open(thrash_file_.c_str(), O_RDONLY);
      if (fd < 0) ::_exit(3);
      ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
      while (::read(fd, buffer.data(), buffer.size()) > 0) {
      }
      ::close(fd);
    }
  }

  void stop_hog() {
    ::kill(hog_, SIGKILL);
    ::waitpid(hog_, nullptr, 0);
    hog_ = -1;
  }

  // The whole cycle: monitor up, pressure on, a raised level within 15 s, pressure off, kNone
  // within 15 s, from the expected source.
  // The monitor runs in `monitor_child` of the limited cgroup where one is named.
  void expect_rise_and_fall(const PressureOptions& options, PressureSource expected_source,
                            const std::function<Environment(const memdx_test::TestCgroup&)>& environment = nullptr,
                            uint64_t anon_bytes = kLimitBytes - 10 * kMiB, bool thrash = true,
                            const std::string& monitor_child = "") {
    memdx_test::TestCgroup cgroup(kLimitBytes);
    if (!cgroup.limited()) GTEST_SKIP() << "no memory cgroup this test may create and limit (needs root)";
    auto ready = start_monitor(cgroup, options, environment ? environment(cgroup) : Environment{}, monitor_child);
    ASSERT_TRUE(ready.has_value()) << "the monitor's process did not report";
    ASSERT_EQ(ready->kind, Message::kReady) << ready->text;
    EXPECT_EQ(ready->source, static_cast<int>(expected_source)) << ready->text;
    std::printf("source: %s\n", ready->text);

    start_hog(cgroup, anon_bytes, thrash);
    auto raised = receive(report_, std::chrono::seconds(15));
    ASSERT_TRUE(raised.has_value()) << "no pressure reported within 15 s";
    EXPECT_EQ(raised->kind, Message::kChange);
    EXPECT_NE(raised->level, static_cast<int>(PressureLevel::kNone)) << raised->text;
    EXPECT_EQ(raised->source, static_cast<int>(expected_source));
    std::printf("raised to %s: %s\n", memdx::to_string(static_cast<PressureLevel>(raised->level)), raised->text);

    stop_hog();
    // Moderate and critical may alternate while the pressure lasts; kNone must come after it ends.
    PressureLevel last = static_cast<PressureLevel>(raised->level);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (last != PressureLevel::kNone && std::chrono::steady_clock::now() < deadline) {
      auto change = receive(
          report_, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
      if (!change) break;
      last = static_cast<PressureLevel>(change->level);
    }
    EXPECT_EQ(last, PressureLevel::kNone) << "the level did not return to none within 15 s of the pressure's end";

    ::close(control_);
    control_ = -1;
    int status = 0;
    ASSERT_EQ(::waitpid(monitor_, &status, 0), monitor_);
    monitor_ = -1;
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }

  static std::string thrash_file_;
  pid_t monitor_ = -1;
  pid_t hog_ = -1;
  int report_ = -1;
  int control_ = -1;
};

std::string PressureTest::thrash_file_;

bool exists(const std::string& path) {
  return ::access(path.c_str(), F_OK) == 0;
}

TEST_F(PressureTest, OwnCgroupPsiByDefault) {
  if (memdx_test::cgroup_mount("cgroup2", "").empty()) {
    std::printf("no cgroup2 mount: the default source is tested by the other cases\n");
    GTEST_SKIP();
  }
  expect_rise_and_fall(PressureOptions{}, PressureSource::kCgroupPsi);
}

TEST_F(PressureTest, SystemPsi) {
  if (!exists("/proc/pressure/memory")) GTEST_SKIP() << "kernel without PSI (/proc/pressure/memory)";
  PressureOptions options;
  options.force_source = PressureSource::kSystemPsi;
  expect_rise_and_fall(options, PressureSource::kSystemPsi);
}

TEST_F(PressureTest, CgroupV1Events) {
  std::string mount = memdx_test::cgroup_mount("cgroup", "memory");
  if (mount.empty()) GTEST_SKIP() << "no cgroup v1 memory controller mounted";
  PressureOptions options;
  options.force_source = PressureSource::kCgroupV1Events;
  expect_rise_and_fall(options, PressureSource::kCgroupV1Events);
}

TEST_F(PressureTest, SystemdWatchWithItsTrigger) {
  if (!exists("/proc/pressure/memory")) GTEST_SKIP() << "kernel without PSI";
  // As systemd sets them for a service: the service's own cgroup's PSI file (the system's where
  // there is no unified hierarchy), and base64 of its default trigger "some 200000 2000000".
  expect_rise_and_fall(PressureOptions{}, PressureSource::kSystemdWatch, [](const memdx_test::TestCgroup& cgroup) {
    std::string watch = cgroup.v2_dir().empty() ? "/proc/pressure/memory" : cgroup.v2_dir() + "/memory.pressure";
    return Environment{{"MEMORY_PRESSURE_WATCH", watch}, {"MEMORY_PRESSURE_WRITE", "c29tZSAyMDAwMDAgMjAwMDAwMA=="}};
  });
}

TEST_F(PressureTest, PollingSeesTheCgroupFill) {
  PressureOptions options;
  options.force_source = PressureSource::kPolling;
  options.poll_interval = std::chrono::milliseconds(100);
  options.polling_moderate_available_ratio = 0.25;
  // 88 MiB of 96 MiB taken by anonymous memory that cannot be reclaimed (no page cache): under 10 %
  // left, well under the 25 % threshold.
  expect_rise_and_fall(options, PressureSource::kPolling, nullptr, kLimitBytes - 8 * kMiB, false);
}

// The limit is on the parent (a service's slice), the monitor in a child without one: polling
// reads the ancestors' limits too.
TEST_F(PressureTest, PollingSeesTheFillOfTheParentThatHoldsTheLimit) {
  PressureOptions options;
  options.force_source = PressureSource::kPolling;
  options.poll_interval = std::chrono::milliseconds(100);
  options.polling_moderate_available_ratio = 0.25;
  expect_rise_and_fall(options, PressureSource::kPolling, nullptr, kLimitBytes - 8 * kMiB, false, "service");
}

// The whole chain on the real kernel: pressure in the cgroup, the monitor's trigger, the governor
// unloading the model, and the decision logged with its numbers.
TEST_F(PressureTest, TheGovernorUnloadsUnderRealPressure) {
  memdx_test::TestCgroup cgroup(kLimitBytes);
  if (!cgroup.limited()) GTEST_SKIP() << "no memory cgroup this test may create and limit (needs root)";
  auto ready = start_governed(cgroup);
  ASSERT_TRUE(ready.has_value()) << "the governed process did not report";
  ASSERT_EQ(ready->kind, Message::kReady) << ready->text;
  std::printf("source: %s\n", ready->text);
  start_hog(cgroup, kLimitBytes - 48 * kMiB, true);  // with the model's 32 MiB: 16 MiB left, thrashing
  std::optional<Message> unloaded;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!unloaded && std::chrono::steady_clock::now() < deadline) {
    auto decision = receive(report_, std::chrono::seconds(1));
    if (!decision) continue;
    std::printf("decision: %s\n", decision->text);
    if (decision->level == static_cast<int>(memdx::DecisionKind::kUnloadedForPressure)) unloaded = decision;
  }
  stop_hog();
  ASSERT_TRUE(unloaded.has_value()) << "the governor unloaded nothing within 20 s of the pressure";
  EXPECT_NE(std::string(unloaded->text).find("unloaded model (32.0 MiB, priority 0) for"), std::string::npos)
      << unloaded->text;
  EXPECT_NE(std::string(unloaded->text).find("cgroup"), std::string::npos) << "the watermark names the cgroup's "
                                                                           << "usage and limit: " << unloaded->text;
}

TEST(PressureMonitor, PollingCallsBackOnItsThreadWithTheNumbers) {
  PressureOptions options;
  options.force_source = PressureSource::kPolling;
  options.poll_interval = std::chrono::milliseconds(10);
  options.polling_moderate_available_ratio = 1.0;  // MemAvailable is always below MemTotal
  options.polling_critical_available_ratio = 0.0;
  std::promise<std::pair<PressureLevel, PressureReading>> first;
  std::atomic<int> calls{0};
  std::thread::id caller = std::this_thread::get_id();
  std::atomic<bool> on_caller_thread{false};
  PressureMonitor monitor(
      [&](PressureLevel level, const PressureReading& reading) {
        if (std::this_thread::get_id() == caller) on_caller_thread = true;
        if (calls++ == 0) first.set_value({level, reading});
      },
      options);
  EXPECT_EQ(monitor.source(), PressureSource::kPolling);
  auto future = first.get_future();
  ASSERT_EQ(future.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  auto [level, reading] = future.get();
  EXPECT_EQ(level, PressureLevel::kModerate);
  EXPECT_EQ(monitor.level(), PressureLevel::kModerate);
  EXPECT_EQ(reading.source, PressureSource::kPolling);
  ASSERT_TRUE(reading.available_bytes.has_value());
  EXPECT_GT(*reading.available_bytes, 0U);
  ASSERT_TRUE(reading.available_ratio.has_value());
  EXPECT_LT(*reading.available_ratio, 1.0);
  EXPECT_FALSE(on_caller_thread);
  // The level stays moderate: one call, not one per poll.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(calls.load(), 1);
}

// Destroyed while its thread sleeps in poll(2) (and, with a 1 ms poll, while it calls back): the
// destructor returns, and no call arrives after it did.
TEST(PressureMonitor, DestructionIsPromptAndFinal) {
  for (int round = 0; round < 50; ++round) {
    PressureOptions options;
    options.force_source = PressureSource::kPolling;
    options.poll_interval = std::chrono::milliseconds(round % 2 == 0 ? 3'600'000 : 1);
    options.polling_moderate_available_ratio = 1.0;
    options.hysteresis = std::chrono::milliseconds(0);
    auto calls = std::make_shared<std::atomic<int>>(0);
    auto destroyed = std::make_shared<std::atomic<bool>>(false);
    auto late_calls = std::make_shared<std::atomic<int>>(0);
    auto monitor = std::make_unique<PressureMonitor>(
        [calls, destroyed, late_calls](PressureLevel, const PressureReading&) {
          if (destroyed->load()) ++*late_calls;
          ++*calls;
          std::this_thread::sleep_for(std::chrono::milliseconds(2));
        },
        options);
    std::this_thread::sleep_for(std::chrono::milliseconds(round % 5));
    auto done = std::async(std::launch::async, [&monitor, destroyed] {
      monitor.reset();
      destroyed->store(true);
    });
    if (done.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
      ADD_FAILURE() << "the destructor did not return within 10 s";
      std::abort();  // a thread still inside the destructor: nothing else can be trusted
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_EQ(late_calls->load(), 0) << "round " << round;
  }
}

TEST(PressureMonitor, SystemdCanTurnItOff) {
  ::setenv("MEMORY_PRESSURE_WATCH", "/dev/null", 1);
  std::atomic<int> calls{0};
  {
    PressureMonitor monitor([&](PressureLevel, const PressureReading&) { ++calls; });
    EXPECT_EQ(monitor.source(), PressureSource::kSystemdWatch);
    EXPECT_NE(monitor.source_description().find("turned off"), std::string::npos) << monitor.source_description();
  }
  ::unsetenv("MEMORY_PRESSURE_WATCH");
  EXPECT_EQ(calls.load(), 0);
}

bool has_cap_sys_resource() {
  std::string status = memdx_test::read_text("/proc/self/status");
  size_t at = status.find("CapEff:");
  if (at == std::string::npos) return false;
  uint64_t caps = std::strtoull(status.c_str() + at + 7, nullptr, 16);
  return (caps >> 24 & 1) != 0;  // CAP_SYS_RESOURCE
}

TEST(PressureMonitor, DescriptionSaysWhatWasSkippedAndWhy) {
  ::unsetenv("MEMORY_PRESSURE_WATCH");
  PressureMonitor monitor([](PressureLevel, const PressureReading&) {});
  std::string description = monitor.source_description();
  std::printf("%s: %s\n", memdx::to_string(monitor.source()), description.c_str());
  EXPECT_NE(description.find("skipped: systemd watch: $MEMORY_PRESSURE_WATCH unset"), std::string::npos) << description;
  if ((monitor.source() == PressureSource::kCgroupPsi || monitor.source() == PressureSource::kSystemPsi) &&
      !has_cap_sys_resource()) {
    // The default 1 s window is refused without CAP_SYS_RESOURCE: the monitor says it took 2 s.
    EXPECT_NE(description.find("as a 2 s window: 1 s refused without CAP_SYS_RESOURCE"), std::string::npos)
        << description;
  }
}

TEST(PressureMonitor, RefusesBadOptions) {
  auto kind_of = [](const std::function<void()>& call) {
    try {
      call();
    } catch (const memdx::Error& e) {
      return e.kind();
    }
    return memdx::ErrorKind::kSystem;
  };
  EXPECT_EQ(kind_of([] { PressureMonitor monitor(nullptr); }), memdx::ErrorKind::kInvalidArgument);
  PressureOptions short_window;
  short_window.psi_window_us = 100'000;
  short_window.moderate_some_stall_us = 10'000;
  EXPECT_EQ(kind_of([&] { PressureMonitor monitor([](PressureLevel, const PressureReading&) {}, short_window); }),
            memdx::ErrorKind::kInvalidArgument);
  PressureOptions ratio;
  ratio.polling_moderate_available_ratio = 1.5;
  EXPECT_EQ(kind_of([&] { PressureMonitor monitor([](PressureLevel, const PressureReading&) {}, ratio); }),
            memdx::ErrorKind::kInvalidArgument);
}

TEST(PressureMonitor, Names) {
  EXPECT_STREQ(memdx::to_string(PressureLevel::kCritical), "critical");
  EXPECT_STREQ(memdx::to_string(PressureSource::kCgroupV1Events), "cgroup v1 events");
}

}  // namespace
