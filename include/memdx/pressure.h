// A callback when the memory the calling process lives in comes under pressure, and again when the
// pressure has gone: the moment to drop caches or unload an idle model, before the kernel reclaims
// or kills for you.
//
// The monitor watches the best source the kernel offers, in this order:
//   1. $MEMORY_PRESSURE_WATCH (with $MEMORY_PRESSURE_WRITE, base64 of the trigger to write), as
//      systemd passes them to a service (systemd.exec MemoryPressureWatch=; "Memory Pressure
//      Handling" in systemd's docs). A PSI file, a FIFO or a unix socket. "/dev/null" means the
//      service manager turned pressure handling off: the monitor then never signals.
//   2. The PSI triggers of the process's own cgroup v2 memory.pressure.
//   3. The system-wide PSI triggers of /proc/pressure/memory.
//   4. cgroup v1's memory.pressure_level events on the own v1 memory cgroup ("medium" is
//      moderate, "critical" critical; "low" fires on any reclaim and is ignored).
//   5. Polling: MemAvailable, and the usage of the own cgroup and of its ancestors against their
//      limits, every poll_interval.
// A source that cannot be used (missing, refused) is skipped; source_description() says which one
// was taken and why each earlier one was not. Without CAP_SYS_RESOURCE the kernel takes PSI
// trigger windows in multiples of 2 s only; a shorter window refused with EINVAL is retried as 2 s
// with the same share of stalled time.
//
// Levels are raised as soon as the kernel reports a trigger, and lowered only after the measured
// pressure has stayed lower for `hysteresis`: while the level is raised, the monitor re-measures
// every poll_interval (PSI: the stall time accrued since the last measure; polling: the numbers;
// v1 and FIFO/socket watches: whether another event came). At kNone, event sources cost nothing:
// the thread sleeps in poll(2) until the kernel wakes it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "memdx/export.h"

namespace memdx {

enum class PressureLevel {
  kNone,      // no pressure worth acting on
  kModerate,  // tasks stall on memory noticeably: a good time to drop caches
  kCritical,  // tasks stall most of the time, or the kernel is near OOM: free memory now
};

enum class PressureSource {
  kSystemdWatch,    // $MEMORY_PRESSURE_WATCH
  kCgroupPsi,       // <own cgroup v2>/memory.pressure
  kSystemPsi,       // /proc/pressure/memory
  kCgroupV1Events,  // <own v1 memory cgroup>/memory.pressure_level via cgroup.event_control
  kPolling,         // MemAvailable and the cgroups' usage, read every poll_interval
};

// "none", "moderate", "critical".
MEMDX_API const char* to_string(PressureLevel level);
// "systemd watch", "cgroup psi", "system psi", "cgroup v1 events", "polling".
MEMDX_API const char* to_string(PressureSource source);

struct PressureOptions {
  // PSI thresholds: stalled time per window, in microseconds. Moderate when at least one task
  // stalled on memory for moderate_some_stall_us of psi_window_us ("some"); critical when every
  // non-idle task stalled together for critical_full_stall_us ("full"). The defaults are 10 % and
  // 30 % of a 1 s window (systemd's own default trigger is "some 200 ms per 2 s", also 10 %).
  // The window must be 500 ms to 10 s and each stall shorter than it.
  uint64_t psi_window_us = 1'000'000;
  uint64_t moderate_some_stall_us = 100'000;
  uint64_t critical_full_stall_us = 300'000;
  // Polling thresholds: the share of memory still available, the smallest of MemAvailable over
  // MemTotal and, for the own cgroup and each ancestor with a limit, (limit - usage + inactive page
  // cache) over the limit (the tighter of memory.max and memory.high). Moderate below the first,
  // critical below the second; both in [0, 1].
  double polling_moderate_available_ratio = 0.10;
  double polling_critical_available_ratio = 0.05;
  // How often the polling source reads, and how often a raised level is re-measured. At least 1 ms.
  std::chrono::milliseconds poll_interval{1000};
  // How long the measured level must stay below the current one before the level is lowered.
  std::chrono::milliseconds hysteresis{2000};
  // Take this source or fail (tests, benchmarks): no fallback to the next one.
  std::optional<PressureSource> force_source;
};

// The figures behind a level change. Fields the source does not provide are empty.
struct PressureReading {
  PressureSource source = PressureSource::kPolling;
  std::chrono::steady_clock::time_point time;  // when the level changed
  // PSI: the kernel's 10 s averages, and the share of time stalled since the previous measure, in
  // percent of wall time.
  std::optional<double> some_avg10_percent;
  std::optional<double> full_avg10_percent;
  std::optional<double> some_recent_percent;
  std::optional<double> full_recent_percent;
  // Polling, and read for every reading: the system's MemAvailable and the own memory cgroup.
  std::optional<uint64_t> available_bytes;
  std::optional<uint64_t> cgroup_usage_bytes;
  std::optional<uint64_t> cgroup_limit_bytes;
  std::optional<double> available_ratio;  // polling: the share the thresholds are compared with
};

// Watches memory pressure on a thread of its own and calls on_change when the level changes.
//
// Threads: on_change runs on the monitor's thread, one call at a time, never on the constructing
// thread and never after the destructor returned. It should return quickly (the monitor does not
// watch while it runs); it may call level() and source(), take locks and free memory, but must not
// destroy the monitor (the destructor joins that thread). level(), source() and
// source_description() may be called from any thread.
class MEMDX_API PressureMonitor {
 public:
  using Callback = std::function<void(PressureLevel level, const PressureReading& reading)>;

  // Chooses the source and starts the thread; the level starts at kNone and on_change is called at
  // the first change. Throws memdx::Error: kInvalidArgument (an empty callback, options outside
  // their ranges), kNotFound (force_source names a source this system cannot provide; the message
  // says why), kSystem (no thread or descriptor could be created).
  explicit PressureMonitor(Callback on_change, PressureOptions options = {});
  // Wakes the thread, joins it and closes the kernel registrations. Returns promptly (within a
  // running on_change call).
  ~PressureMonitor();
  PressureMonitor(const PressureMonitor&) = delete;
  PressureMonitor& operator=(const PressureMonitor&) = delete;
  PressureMonitor(PressureMonitor&&) = delete;
  PressureMonitor& operator=(PressureMonitor&&) = delete;

  PressureLevel level() const;
  PressureSource source() const;
  // What is watched, how, and why each earlier source was skipped, e.g. "PSI triggers on
  // /sys/fs/cgroup/app/memory.pressure (2 s window: 1 s refused without CAP_SYS_RESOURCE)".
  std::string source_description() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace memdx
