#include "memdx/pressure.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

#include "memdx/error.h"
#include "proc/procfs.h"
#include "proc/unique_fd.h"

namespace memdx {
namespace {

using Clock = std::chrono::steady_clock;
using proc::UniqueFd;

// Without CAP_SYS_RESOURCE the kernel accepts PSI windows in multiples of this only.
constexpr uint64_t kUnprivilegedWindowUs = 2'000'000;

// What the chosen source opened. The thread polls the two descriptors (either may be absent).
struct Watch {
  PressureSource source = PressureSource::kPolling;
  std::string description;
  std::string psi_path;  // re-read while the level is raised; "" when the source has no PSI file
  UniqueFd moderate_fd;
  UniqueFd critical_fd;
  short wait_events = POLLPRI;  // POLLPRI for PSI triggers, POLLIN for eventfds, FIFOs and sockets
  bool drain = false;           // read the descriptor on every wake-up (eventfd, FIFO, socket)
  UniqueFd keep_fd;             // held for the registration's lifetime (v1 memory.pressure_level)
};

// Either a watch, or why the source cannot be used.
struct Attempt {
  std::optional<Watch> watch;
  std::string why_not;
};

Attempt refused(std::string why) {
  return {std::nullopt, std::move(why)};
}

std::string errno_text(int err) {
  return std::strerror(err);
}

std::string ms_text(uint64_t us) {
  if (us % 1'000'000 == 0) return fmt::format("{} s", us / 1'000'000);
  return fmt::format("{} ms", us / 1000);
}

// Writes `text` with its terminating NUL: the kernel overwrites the last byte written with one.
bool write_trigger(int fd, const std::string& text) {
  ssize_t written = ::write(fd, text.c_str(), text.size() + 1);
  return written == static_cast<ssize_t>(text.size() + 1);
}

struct Trigger {
  UniqueFd fd;
  uint64_t window_us = 0;
  std::string error;  // "" on success
};

// A PSI trigger "KIND STALL WINDOW" on `path`. A window the kernel refuses with EINVAL (shorter
// than 2 s or not a multiple of it, without CAP_SYS_RESOURCE) is retried as 2 s, keeping the share.
Trigger open_trigger(const std::string& path, const char* kind, uint64_t stall_us, uint64_t window_us) {
  Trigger trigger;
  std::vector<uint64_t> windows = {window_us};
  if (window_us % kUnprivilegedWindowUs != 0) windows.push_back(kUnprivilegedWindowUs);
  for (uint64_t window : windows) {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC));
    if (!fd.valid()) {
      trigger.error = fmt::format("{}: {}", path, errno_text(errno));
      return trigger;
    }
    uint64_t stall = stall_us * window / window_us;
    if (write_trigger(fd.get(), fmt::format("{} {} {}", kind, stall, window))) {
      trigger.fd = std::move(fd);
      trigger.window_us = window;
      trigger.error.clear();
      return trigger;
    }
    trigger.error =
        fmt::format("{} refused the trigger \"{} {} {}\": {}", path, kind, stall, window, errno_text(errno));
    if (errno != EINVAL) break;
  }
  return trigger;
}

// Both PSI triggers on `path`: the moderate one must hold, the critical one is best effort (some
// kernels lack "full" for memory); without it, critical is found by re-measuring.
Attempt psi_watch(PressureSource source, const std::string& path, const PressureOptions& options) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return refused(fmt::format("{}: {}", path, errno_text(errno)));
  Trigger moderate = open_trigger(path, "some", options.moderate_some_stall_us, options.psi_window_us);
  if (!moderate.fd.valid()) return refused(moderate.error);
  Trigger critical = open_trigger(path, "full", options.critical_full_stall_us, options.psi_window_us);
  Watch watch;
  watch.source = source;
  watch.psi_path = path;
  watch.description =
      fmt::format("PSI triggers on {} (some {} / full {} per {}", path, ms_text(options.moderate_some_stall_us),
                  ms_text(options.critical_full_stall_us), ms_text(options.psi_window_us));
  if (moderate.window_us != options.psi_window_us) {
    watch.description += fmt::format(", as a {} window: {} refused without CAP_SYS_RESOURCE",
                                     ms_text(moderate.window_us), ms_text(options.psi_window_us));
  }
  watch.description += ")";
  if (!critical.fd.valid()) watch.description += fmt::format(" [no full trigger: {}]", critical.error);
  watch.moderate_fd = std::move(moderate.fd);
  watch.critical_fd = std::move(critical.fd);
  return {std::move(watch), ""};
}

std::optional<std::string> base64_decode(std::string_view text) {
  std::string out;
  uint32_t bits = 0;
  int count = 0;
  for (char c : text) {
    int value = -1;
    if (c >= 'A' && c <= 'Z') value = c - 'A';
    if (c >= 'a' && c <= 'z') value = c - 'a' + 26;
    if (c >= '0' && c <= '9') value = c - '0' + 52;
    if (c == '+') value = 62;
    if (c == '/') value = 63;
    if (c == '=' || c == '\n') continue;
    if (value < 0) return std::nullopt;
    bits = (bits << 6) | static_cast<uint32_t>(value);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<char>((bits >> count) & 0xff));
    }
  }
  return out;
}

// $MEMORY_PRESSURE_WATCH: a PSI file to write the trigger to, or a FIFO/socket systemd (or
// another service manager) writes to on pressure. Every event there is moderate pressure; a PSI
// file's numbers can still raise it to critical when re-measured.
Attempt systemd_watch(const PressureOptions& options) {
  const char* path = std::getenv("MEMORY_PRESSURE_WATCH");
  if (path == nullptr || *path == '\0') return refused("$MEMORY_PRESSURE_WATCH unset");
  Watch watch;
  watch.source = PressureSource::kSystemdWatch;
  if (std::string_view(path) == "/dev/null") {
    watch.description = "turned off by the service manager ($MEMORY_PRESSURE_WATCH=/dev/null): never signals";
    return {std::move(watch), ""};
  }
  std::string trigger;
  if (const char* encoded = std::getenv("MEMORY_PRESSURE_WRITE"); encoded != nullptr && *encoded != '\0') {
    auto decoded = base64_decode(encoded);
    if (!decoded) return refused("$MEMORY_PRESSURE_WRITE is not base64");
    trigger = decoded->substr(0, decoded->find('\0'));
  }
  struct stat st {};
  if (::stat(path, &st) != 0) return refused(fmt::format("$MEMORY_PRESSURE_WATCH={}: {}", path, errno_text(errno)));
  if (S_ISREG(st.st_mode)) {
    // A PSI file (procfs and cgroupfs files are regular).
    if (trigger.empty()) {
      Attempt attempt = psi_watch(PressureSource::kSystemdWatch, path, options);
      if (attempt.watch) attempt.watch->description = "$MEMORY_PRESSURE_WATCH: " + attempt.watch->description;
      return attempt;
    }
    UniqueFd fd(::open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC));
    if (!fd.valid() || !write_trigger(fd.get(), trigger)) {
      return refused(fmt::format("$MEMORY_PRESSURE_WATCH={} refused \"{}\": {}", path, trigger, errno_text(errno)));
    }
    watch.moderate_fd = std::move(fd);
    watch.psi_path = path;
    watch.description = fmt::format("$MEMORY_PRESSURE_WATCH: PSI trigger \"{}\" on {}", trigger, path);
    return {std::move(watch), ""};
  }
  watch.wait_events = POLLIN;
  watch.drain = true;
  if (S_ISFIFO(st.st_mode)) {
    watch.moderate_fd.reset(::open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    watch.description = fmt::format("$MEMORY_PRESSURE_WATCH: events on the FIFO {}", path);
  } else if (S_ISSOCK(st.st_mode)) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (std::strlen(path) >= sizeof(address.sun_path)) return refused("$MEMORY_PRESSURE_WATCH: socket path too long");
    std::strncpy(address.sun_path, path, sizeof(address.sun_path) - 1);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd.valid() || ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
      return refused(fmt::format("$MEMORY_PRESSURE_WATCH={}: {}", path, errno_text(errno)));
    }
    if (!trigger.empty() && !write_trigger(fd.get(), trigger)) {
      return refused(fmt::format("$MEMORY_PRESSURE_WATCH={}: {}", path, errno_text(errno)));
    }
    watch.moderate_fd = std::move(fd);
    watch.description = fmt::format("$MEMORY_PRESSURE_WATCH: events on the socket {}", path);
  } else {
    return refused(fmt::format("$MEMORY_PRESSURE_WATCH={} is neither a PSI file, a FIFO nor a socket", path));
  }
  if (!watch.moderate_fd.valid()) return refused(fmt::format("$MEMORY_PRESSURE_WATCH={}: {}", path, errno_text(errno)));
  return {std::move(watch), ""};
}

Attempt cgroup_psi_watch(const proc::ProcFs& procfs, const PressureOptions& options) {
  auto directory = procfs.cgroup2_directory(::getpid());
  if (!directory) return refused("no cgroup v2 hierarchy");
  std::string path = *directory;
  while (!path.empty() && path.back() == '/') path.pop_back();
  Attempt attempt = psi_watch(PressureSource::kCgroupPsi, path + "/memory.pressure", options);
  // The root cgroup's pressure is the whole system's: say so, the user may expect their service's.
  // Every cgroup but the root has cgroup.events.
  bool root = ::access((path + "/cgroup.events").c_str(), F_OK) != 0;
  if (attempt.watch && root) attempt.watch->description += " [the root cgroup: system-wide]";
  return attempt;
}

// One cgroup v1 pressure_level registration: an eventfd the kernel signals at `level` and above.
UniqueFd register_v1_level(const std::string& directory, int level_fd, const char* level, std::string& error) {
  UniqueFd event(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  UniqueFd control(::open((directory + "/cgroup.event_control").c_str(), O_WRONLY | O_CLOEXEC));
  std::string line = fmt::format("{} {} {}", event.get(), level_fd, level);
  if (!event.valid() || !control.valid() || ::write(control.get(), line.data(), line.size()) < 0) {
    error = fmt::format("{}/cgroup.event_control: {}", directory, errno_text(errno));
    return UniqueFd();
  }
  return event;
}

Attempt cgroup_v1_watch(const proc::ProcFs& procfs) {
  auto cgroup = procfs.memory_cgroup(::getpid());
  if (!cgroup || cgroup->version != 1) return refused("no cgroup v1 memory controller");
  std::string level_path = cgroup->directory + "/memory.pressure_level";
  Watch watch;
  watch.keep_fd.reset(::open(level_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!watch.keep_fd.valid()) return refused(fmt::format("{}: {}", level_path, errno_text(errno)));
  std::string error;
  watch.moderate_fd = register_v1_level(cgroup->directory, watch.keep_fd.get(), "medium", error);
  watch.critical_fd = register_v1_level(cgroup->directory, watch.keep_fd.get(), "critical", error);
  if (!watch.moderate_fd.valid() || !watch.critical_fd.valid()) return refused(error);
  watch.source = PressureSource::kCgroupV1Events;
  watch.wait_events = POLLIN;
  watch.drain = true;
  watch.description = fmt::format("cgroup v1 pressure_level events (medium, critical) on {}", cgroup->directory);
  return {std::move(watch), ""};
}

Attempt polling_watch(const proc::ProcFs& procfs, const PressureOptions& options) {
  auto meminfo = procfs.meminfo();
  if (!meminfo.ok()) return refused(fmt::format("{}: {}", meminfo.error().path, meminfo.error().message));
  Watch watch;
  watch.source = PressureSource::kPolling;
  watch.description =
      fmt::format("polling MemAvailable and the memory cgroup every {} ms", options.poll_interval.count());
  if (auto cgroup = procfs.memory_cgroup(::getpid()); cgroup && cgroup->max_bytes) {
    watch.description += fmt::format(" ({}, limit {} bytes)", cgroup->directory, *cgroup->max_bytes);
  }
  return {std::move(watch), ""};
}

Attempt try_source(PressureSource source, const proc::ProcFs& procfs, const PressureOptions& options) {
  switch (source) {
    case PressureSource::kSystemdWatch:
      return systemd_watch(options);
    case PressureSource::kCgroupPsi:
      return cgroup_psi_watch(procfs, options);
    case PressureSource::kSystemPsi:
      return psi_watch(PressureSource::kSystemPsi, "/proc/pressure/memory", options);
    case PressureSource::kCgroupV1Events:
      return cgroup_v1_watch(procfs);
    case PressureSource::kPolling:
      return polling_watch(procfs, options);
  }
  return refused("unknown source");
}

Watch choose_watch(const proc::ProcFs& procfs, const PressureOptions& options) {
  if (options.force_source) {
    Attempt attempt = try_source(*options.force_source, procfs, options);
    if (!attempt.watch) {
      throw Error(ErrorKind::kNotFound, fmt::format("memory pressure source \"{}\" unavailable: {}",
                                                    to_string(*options.force_source), attempt.why_not));
    }
    return std::move(*attempt.watch);
  }
  std::vector<std::string> skipped;
  for (PressureSource source : {PressureSource::kSystemdWatch, PressureSource::kCgroupPsi, PressureSource::kSystemPsi,
                                PressureSource::kCgroupV1Events, PressureSource::kPolling}) {
    Attempt attempt = try_source(source, procfs, options);
    if (attempt.watch) {
      Watch watch = std::move(*attempt.watch);
      for (size_t i = 0; i < skipped.size(); ++i) watch.description += (i == 0 ? "; skipped: " : "; ") + skipped[i];
      return watch;
    }
    skipped.push_back(fmt::format("{}: {}", to_string(source), attempt.why_not));
  }
  throw Error(ErrorKind::kSystem, "no memory pressure source: " + skipped.back());
}

void check_options(const PressureOptions& options) {
  auto bad = [](const std::string& what) { throw Error(ErrorKind::kInvalidArgument, "PressureOptions: " + what); };
  if (options.psi_window_us < 500'000 || options.psi_window_us > 10'000'000) bad("psi_window_us outside 0.5-10 s");
  if (options.moderate_some_stall_us == 0 || options.moderate_some_stall_us >= options.psi_window_us) {
    bad("moderate_some_stall_us must be above 0 and below psi_window_us");
  }
  if (options.critical_full_stall_us == 0 || options.critical_full_stall_us >= options.psi_window_us) {
    bad("critical_full_stall_us must be above 0 and below psi_window_us");
  }
  auto ratio_ok = [](double r) { return r >= 0 && r <= 1; };
  if (!ratio_ok(options.polling_moderate_available_ratio) || !ratio_ok(options.polling_critical_available_ratio)) {
    bad("polling ratios must be within [0, 1]");
  }
  if (options.poll_interval.count() < 1) bad("poll_interval under 1 ms");
  if (options.hysteresis.count() < 0) bad("negative hysteresis");
}

}  // namespace

const char* to_string(PressureLevel level) {
  switch (level) {
    case PressureLevel::kNone:
      return "none";
    case PressureLevel::kModerate:
      return "moderate";
    case PressureLevel::kCritical:
      return "critical";
  }
  return "?";
}

const char* to_string(PressureSource source) {
  switch (source) {
    case PressureSource::kSystemdWatch:
      return "systemd watch";
    case PressureSource::kCgroupPsi:
      return "cgroup psi";
    case PressureSource::kSystemPsi:
      return "system psi";
    case PressureSource::kCgroupV1Events:
      return "cgroup v1 events";
    case PressureSource::kPolling:
      return "polling";
  }
  return "?";
}

struct PressureMonitor::State {
  Callback on_change;
  PressureOptions options;
  proc::ProcFs procfs;
  Watch watch;
  UniqueFd wake_fd;  // an eventfd the destructor writes to: the thread's way out of poll(2)
  std::atomic<PressureLevel> level{PressureLevel::kNone};
  std::thread thread;

  // Re-measuring: the PSI totals at the previous measure, for the stall accrued since.
  std::optional<proc::Psi> previous_psi;
  Clock::time_point previous_psi_time;
  // Hysteresis: since when the measured level has stayed below the current one, and the highest
  // level measured in that time (what the level is lowered to).
  std::optional<Clock::time_point> below_since;
  PressureLevel highest_below = PressureLevel::kNone;

  struct Measure {
    PressureLevel level = PressureLevel::kNone;
    PressureReading reading;
  };

  void run();
  // Which of the source's descriptors woke poll(2): the level their events stand for.
  PressureLevel take_events(pollfd* fds);
  Measure measure(Clock::time_point now);
  void measure_psi(Clock::time_point now, Measure& result);
  void measure_memory(Measure& result) const;
  void apply(PressureLevel observed, const PressureReading& reading, Clock::time_point now);
  void notify(PressureLevel new_level, PressureReading reading, Clock::time_point now);
};

void PressureMonitor::State::measure_memory(Measure& result) const {
  PressureReading& reading = result.reading;
  std::optional<double> ratio;
  if (auto meminfo = procfs.meminfo(); meminfo.ok()) {
    reading.available_bytes = meminfo->mem_available_bytes.value_or(meminfo->mem_free_bytes);
    if (meminfo->mem_total_bytes > 0) {
      ratio = static_cast<double>(*reading.available_bytes) / static_cast<double>(meminfo->mem_total_bytes);
    }
  }
  if (auto cgroup = procfs.memory_cgroup(::getpid())) {
    reading.cgroup_usage_bytes = cgroup->current_bytes;
    reading.cgroup_limit_bytes = cgroup->max_bytes;
    // The own cgroup and, for the polling source, its ancestors: a service's slice often holds the
    // limit. Inactive page cache is room: the kernel drops it before it reclaims what hurts.
    std::vector<proc::CgroupMemory> cgroups{*cgroup};
    if (watch.source == PressureSource::kPolling) {
      std::vector<proc::CgroupMemory> ancestors = procfs.memory_cgroup_ancestors(*cgroup);
      cgroups.insert(cgroups.end(), ancestors.begin(), ancestors.end());
    }
    for (const proc::CgroupMemory& each : cgroups) {
      if (std::optional<double> cgroup_ratio = each.room_ratio()) {
        ratio = ratio ? std::min(*ratio, *cgroup_ratio) : *cgroup_ratio;
      }
    }
  }
  if (watch.source != PressureSource::kPolling || !ratio) return;
  reading.available_ratio = ratio;
  if (*ratio < options.polling_critical_available_ratio) {
    result.level = PressureLevel::kCritical;
  } else if (*ratio < options.polling_moderate_available_ratio) {
    result.level = PressureLevel::kModerate;
  }
}

void PressureMonitor::State::measure_psi(Clock::time_point now, Measure& result) {
  auto text = procfs.read_file(watch.psi_path);
  if (!text.ok()) return;
  proc::Psi psi = proc::parse_psi(*text);
  PressureReading& reading = result.reading;
  if (psi.some) reading.some_avg10_percent = psi.some->avg10;
  if (psi.full) reading.full_avg10_percent = psi.full->avg10;
  auto elapsed_us = std::chrono::duration_cast<std::chrono::microseconds>(now - previous_psi_time).count();
  // A share over a long idle stretch says nothing about now: only a recent baseline counts.
  bool recent = previous_psi && elapsed_us > 0 && now - previous_psi_time <= 3 * options.poll_interval;
  auto share = [&](const std::optional<proc::PsiLine>& before, const std::optional<proc::PsiLine>& after) {
    std::optional<double> percent;
    if (recent && before && after && after->total_us >= before->total_us) {
      percent = 100.0 * static_cast<double>(after->total_us - before->total_us) / static_cast<double>(elapsed_us);
    }
    return percent;
  };
  if (recent) {
    reading.some_recent_percent = share(previous_psi->some, psi.some);
    reading.full_recent_percent = share(previous_psi->full, psi.full);
  }
  previous_psi = psi;
  previous_psi_time = now;
  double window = static_cast<double>(options.psi_window_us);
  double critical_percent = 100.0 * static_cast<double>(options.critical_full_stall_us) / window;
  double moderate_percent = 100.0 * static_cast<double>(options.moderate_some_stall_us) / window;
  if (reading.full_recent_percent.value_or(0) >= critical_percent) {
    result.level = PressureLevel::kCritical;
  } else if (reading.some_recent_percent.value_or(0) >= moderate_percent) {
    result.level = PressureLevel::kModerate;
  }
}

PressureMonitor::State::Measure PressureMonitor::State::measure(Clock::time_point now) {
  Measure result;
  result.reading.source = watch.source;
  if (!watch.psi_path.empty()) measure_psi(now, result);
  measure_memory(result);
  return result;
}

PressureLevel PressureMonitor::State::take_events(pollfd* fds) {
  PressureLevel found = PressureLevel::kNone;
  UniqueFd* owners[2] = {&watch.moderate_fd, &watch.critical_fd};
  const PressureLevel levels[2] = {PressureLevel::kModerate, PressureLevel::kCritical};
  for (int i = 0; i < 2; ++i) {
    short revents = fds[i].revents;
    if (revents == 0) continue;
    if ((revents & watch.wait_events) != 0) found = std::max(found, levels[i]);
    bool closed = (revents & (POLLERR | POLLNVAL)) != 0;
    if (watch.drain) {
      char buffer[256];
      ssize_t n = 0;
      while ((n = ::read(fds[i].fd, buffer, sizeof(buffer))) > 0) {
      }
      // A FIFO or socket whose writer went away: nothing more will come from it.
      closed = closed || n == 0 || (revents & POLLHUP) != 0;
    }
    if (closed) {
      owners[i]->reset();
      fds[i].fd = -1;
    }
  }
  return found;
}

void PressureMonitor::State::notify(PressureLevel new_level, PressureReading reading, Clock::time_point now) {
  level.store(new_level);
  reading.time = now;
  try {
    on_change(new_level, reading);
  } catch (...) {
    // Nowhere to report it from this thread; the monitor keeps watching.
  }
}

void PressureMonitor::State::apply(PressureLevel observed, const PressureReading& reading, Clock::time_point now) {
  PressureLevel current = level.load();
  if (observed >= current) {
    below_since.reset();
    if (observed > current) notify(observed, reading, now);
    return;
  }
  if (!below_since) {
    below_since = now;
    highest_below = observed;
  }
  highest_below = std::max(highest_below, observed);
  if (now - *below_since >= options.hysteresis) {
    below_since.reset();
    notify(highest_below, reading, now);
  }
}

void PressureMonitor::State::run() {
  bool polling = watch.source == PressureSource::kPolling;
  Clock::time_point next_measure = Clock::now();
  // Slot 0 is the wake eventfd; slots 1 and 2 the source's moderate and critical descriptors.
  pollfd fds[3] = {{wake_fd.get(), POLLIN, 0},
                   {watch.moderate_fd.valid() ? watch.moderate_fd.get() : -1, watch.wait_events, 0},
                   {watch.critical_fd.valid() ? watch.critical_fd.get() : -1, watch.wait_events, 0}};
  while (true) {
    int timeout_ms = -1;
    if (polling || level.load() != PressureLevel::kNone) {
      auto wait = std::chrono::ceil<std::chrono::milliseconds>(next_measure - Clock::now());
      timeout_ms = static_cast<int>(std::max<int64_t>(0, wait.count()));
    }
    for (pollfd& fd : fds) fd.revents = 0;
    int ready = ::poll(fds, 3, timeout_ms);
    if (ready < 0 && errno != EINTR) return;
    if (fds[0].revents != 0) return;
    PressureLevel event_level = ready > 0 ? take_events(fds + 1) : PressureLevel::kNone;
    Clock::time_point now = Clock::now();
    if (event_level == PressureLevel::kNone && now < next_measure) continue;
    Measure measured = measure(now);
    next_measure = now + options.poll_interval;
    apply(std::max(event_level, measured.level), measured.reading, now);
  }
}

PressureMonitor::PressureMonitor(Callback on_change, PressureOptions options) : state_(std::make_unique<State>()) {
  if (!on_change) throw Error(ErrorKind::kInvalidArgument, "PressureMonitor: empty callback");
  check_options(options);
  state_->on_change = std::move(on_change);
  state_->options = options;
  state_->watch = choose_watch(state_->procfs, options);
  state_->wake_fd.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!state_->wake_fd.valid()) throw Error(ErrorKind::kSystem, "PressureMonitor: eventfd: " + errno_text(errno));
  try {
    state_->thread = std::thread([state = state_.get()] { state->run(); });
  } catch (const std::system_error& e) {
    throw Error(ErrorKind::kSystem, std::string("PressureMonitor: cannot start its thread: ") + e.what());
  }
}

PressureMonitor::~PressureMonitor() {
  uint64_t one = 1;
  // An eventfd write fails only when the counter would overflow: it is already signalled then.
  [[maybe_unused]] ssize_t written = ::write(state_->wake_fd.get(), &one, sizeof(one));
  state_->thread.join();
}

PressureLevel PressureMonitor::level() const {
  return state_->level.load();
}

PressureSource PressureMonitor::source() const {
  return state_->watch.source;
}

std::string PressureMonitor::source_description() const {
  return state_->watch.description;
}

}  // namespace memdx
