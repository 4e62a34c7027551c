// A program outside memdx's tree that uses the installed libmemdx as any program would: only
// <memdx/memdx.h>, linked by find_package(memdx) or by pkg-config (check.sh builds it both ways).
// It measures what it does itself and checks that libmemdx says so: its own memory before and
// after writing 64 MiB, two children it starts (one growing without bound, one that allocates once
// and stays) recorded at once and judged, the trend test on a series it makes, and the errors.
// Prints one line per check; exits 1 on the first that fails.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <memdx/memdx.h>

namespace {

constexpr uint64_t kMiB = 1024 * 1024;

void check(bool ok, const std::string& what) {
  std::printf("%s: %s\n", ok ? "ok" : "FAILED", what.c_str());
  std::fflush(stdout);
  if (!ok) std::exit(1);
}

// Writes `bytes` of fresh memory, so that it is resident and private (anon).
char* touch(uint64_t bytes) {
  char* block = static_cast<char*>(std::malloc(bytes));
  if (block == nullptr) std::abort();
  std::memset(block, 0x5a, bytes);
  return block;
}

// A child that writes 2 MiB more every 100 ms and keeps all of it, for `seconds`.
pid_t start_growing_child(int seconds) {
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  for (int i = 0; i < seconds * 10; ++i) {
    touch(2 * kMiB);
    ::usleep(100 * 1000);
  }
  ::_exit(0);
}

// A child that writes 32 MiB once and then holds it, for `seconds`.
pid_t start_steady_child(int seconds) {
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  char* kept = touch(32 * kMiB);
  for (int i = 0; i < seconds * 10; ++i) {
    kept[i % (32 * kMiB)] ^= 1;
    ::usleep(100 * 1000);
  }
  ::_exit(0);
}

template <class F>
memdx::ErrorKind error_kind_of(F call) {
  try {
    call();
  } catch (const memdx::Error& e) {
    std::printf("    memdx::Error (%s): %s\n", memdx::to_string(e.kind()), e.what());
    return e.kind();
  }
  check(false, "an error was thrown");
  return memdx::ErrorKind::kSystem;
}

void own_memory() {
  memdx::ProcessMemory before = memdx::read_process_memory(::getpid());
  char* block = touch(64 * kMiB);
  memdx::ProcessMemory after = memdx::read_process_memory(::getpid());
  check(after.rss_anon_bytes >= before.rss_anon_bytes + 60 * kMiB,
        "RssAnon grew by 64 MiB written: " + std::to_string(before.rss_anon_bytes / kMiB) + " -> " +
            std::to_string(after.rss_anon_bytes / kMiB) + " MiB");
  check(after.rss_bytes >= after.rss_anon_bytes + after.rss_file_bytes, "RSS holds anon and file");
  check(after.vsz_bytes >= after.rss_bytes, "VSZ is at least RSS");
  check(after.pss_bytes && after.uss_bytes && *after.uss_bytes >= 60 * kMiB, "PSS and USS read for itself");

  memdx::InspectReport report = memdx::inspect(::getpid());
  check(report.processes.size() == 1 && report.processes[0].pid == ::getpid(), "inspect() reads this process");
  uint64_t anon_rss = 0;
  for (const memdx::RegionTotals& totals : report.processes[0].regions) {
    if (totals.category == memdx::RegionCategory::kAnonMmap || totals.category == memdx::RegionCategory::kHeap) {
      anon_rss += totals.rss_bytes;
    }
  }
  check(anon_rss >= 64 * kMiB,
        "inspect() puts the 64 MiB in the heap or anonymous mappings: " + std::to_string(anon_rss / kMiB) + " MiB");
  check(report.system.mem_total_bytes > 0, "inspect() reads the system's MemTotal");
  std::free(block);
}

void trend_test() {
  std::vector<memdx::SeriesPoint> rising, flat;
  for (int i = 0; i < 60; ++i) {
    double t_s = i * 0.5;
    rising.push_back({t_s, 100.0 * kMiB + t_s * kMiB});  // 1 MiB/s
    flat.push_back({t_s, 100.0 * kMiB + (i % 3) * 4096.0});
  }
  memdx::TrendOptions options;
  options.min_growth_abs_per_s = 64 * 1024;
  memdx::TrendResult up = memdx::test_trend(rising, options);
  check(up.verdict == memdx::TrendVerdict::kGrowing && up.slope_per_s > 0.99 * kMiB && up.slope_per_s < 1.01 * kMiB,
        std::string("a 1 MiB/s series grows: ") + memdx::to_string(up.verdict) + ", " +
            std::to_string(up.slope_per_s / kMiB) + " MiB/s, confidence " + std::to_string(up.confidence));
  memdx::TrendResult level = memdx::test_trend(flat, options);
  check(level.verdict == memdx::TrendVerdict::kFlat,
        std::string("a series that only wobbles is flat: ") + memdx::to_string(level.verdict));
}

void recordings(const std::string& directory) {
  const std::string growing_path = directory + "/growing.memdx";
  const std::string steady_path = directory + "/steady.memdx";
  pid_t growing = start_growing_child(8);
  pid_t steady = start_steady_child(8);
  memdx::RecordOptions options;
  options.interval_ms = 100;
  memdx::Recording growing_recording = memdx::Recording::start(growing, growing_path, options);
  memdx::Recording steady_recording = memdx::Recording::start(steady, steady_path, options);
  check(growing_recording.path() == growing_path, "the recording is where it was asked to be");
  // The library reaps nothing: the children are this program's to wait for.
  int status = 0;
  check(::waitpid(growing, &status, 0) == growing && ::waitpid(steady, &status, 0) == steady,
        "the children are still this program's to reap");
  for (int i = 0; i < 50 && !(growing_recording.finished() && steady_recording.finished()); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  check(growing_recording.finished() && steady_recording.finished(), "the recordings end with their trees");
  growing_recording.stop();
  steady_recording.stop();

  memdx::Verdict grew = memdx::analyze_recording(growing_path);
  bool anon_leak = false;
  for (const memdx::Finding& f : grew.findings) {
    std::printf("    %s %s pid %d: %s\n", memdx::to_string(f.severity), memdx::to_string(f.kind), f.pid,
                f.evidence.c_str());
    if (f.pid == growing && f.severity == memdx::Severity::kLeak && f.kind == memdx::FindingKind::kAnonGrowth &&
        f.rate_per_s > 10.0 * kMiB && f.rate_per_s < 30.0 * kMiB) {
      anon_leak = true;
    }
  }
  check(memdx::has_leak(grew) && anon_leak, "the child writing 20 MiB/s is a leak of anonymous memory");
  bool confirmed = false;
  for (const memdx::Hypothesis& h : grew.hypotheses) {
    confirmed |= h.pid == growing && h.kind == memdx::HypothesisKind::kAnonGrowth &&
                 h.status == memdx::HypothesisStatus::kConfirmed;
  }
  check(confirmed, "its anon_growth hypothesis is confirmed");
  memdx::Verdict stayed = memdx::analyze_recording(steady_path);
  check(!memdx::has_leak(stayed) && !stayed.findings.empty(), "the child that allocated once is no leak");
  check(memdx::verdict_json(grew).find("\"schema\": \"memdx.verdict/1\"") != std::string::npos,
        "the verdict's JSON is memdx.verdict/1");

  check(error_kind_of([&] { memdx::Recording::start(::getpid(), growing_path); }) == memdx::ErrorKind::kAlreadyExists,
        "a recording is never overwritten");
  check(error_kind_of([&] { memdx::read_process_memory(growing); }) == memdx::ErrorKind::kNoSuchProcess,
        "a reaped child is no process");
  check(error_kind_of([&] { memdx::analyze_recording(directory + "/none.memdx"); }) == memdx::ErrorKind::kNotFound,
        "a missing recording is not found");
  check(error_kind_of([&] { memdx::read_process_memory(0); }) == memdx::ErrorKind::kInvalidArgument,
        "pid 0 is refused");
}

// Keeping memory bounded (issue 15's headers): a governed 32 MiB block unloaded under pressure and
// its memory given back, an idle unload, a byte-budget cache, a bounded channel, the history's
// JSON, preflight and a pressure monitor.
void bounded_memory() {
  memdx::PreflightRequest small;
  small.needed_bytes = kMiB;
  check(memdx::preflight(small).can_proceed, "preflight: 1 MiB fits");
  memdx::PreflightRequest huge;
  huge.needed_bytes = uint64_t{1} << 60;
  memdx::PreflightResult refused = memdx::preflight(huge);
  check(!refused.can_proceed && !refused.guidance.empty(), "preflight: 1 EiB does not fit, and says what to do");

  char* block = touch(32 * kMiB);
  uint64_t before = memdx::read_watermark().rss_bytes;
  memdx::Governor governor;
  memdx::ResourceId id = governor.add({"block", 32 * kMiB, 0, [&block] {
                                         std::free(block);
                                         block = nullptr;
                                         return uint64_t{0};
                                       }});
  memdx::PressureOptions polling;
  polling.force_source = memdx::PressureSource::kPolling;
  memdx::PressureMonitor monitor(
      [&](memdx::PressureLevel level, const memdx::PressureReading&) { governor.on_pressure(level); }, polling);
  check(monitor.source() == memdx::PressureSource::kPolling, "a pressure monitor starts");
  governor.on_pressure(memdx::PressureLevel::kCritical);
  for (int i = 0; i < 1000 && governor.loaded(id); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  governor.on_pressure(memdx::PressureLevel::kNone);
  check(!governor.loaded(id) && block == nullptr, "the governor unloads under pressure");
  check(memdx::read_watermark().rss_bytes + 24 * kMiB < before, "and the memory went back to the kernel");

  int unloads = 0;
  {
    memdx::IdleUnloader idle(std::chrono::milliseconds(50), [&] { ++unloads; });
    for (int i = 0; i < 300 && !idle.unloaded(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  check(unloads == 1, "the idle unloader unloads once");

  memdx::ByteBudgetCache<int, std::string> cache(10 * 1024);
  for (int i = 0; i < 100; ++i) cache.put(i, std::string(1024, 'x'), 1024);
  check(cache.size_bytes() <= 10 * 1024 && cache.get(99) != nullptr && cache.get(0) == nullptr,
        "the cache keeps the newest 10 KiB");

  memdx::BoundedChannel<int> channel(4, memdx::Overflow::kDropOldest);
  for (int i = 0; i < 10; ++i) channel.push(i);
  check(channel.size() == 4 && channel.try_pop() == 6 && channel.stats().dropped_oldest == 6,
        "the channel keeps the newest 4");

  memdx::BoundedHistory<memdx::MetricsRecord> history(3);
  for (int i = 0; i < 5; ++i) history.push({i, {{"latency_ms", i * 1.5}}});
  check(memdx::to_json(history.snapshot()).find("\"latency_ms\":6") != std::string::npos,
        "the history keeps the last 3 and writes JSON");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIRECTORY (where the recordings go)\n", argv[0]);
    return 2;
  }
  std::printf("libmemdx %s (built against %s)\n", memdx::version(), MEMDX_VERSION_STRING);
  check(std::string(memdx::version()) == MEMDX_VERSION_STRING, "the library is the version of its headers");
  own_memory();
  trend_test();
  recordings(argv[1]);
  bounded_memory();
  return 0;
}
