// What `memdx serve` knows: its targets sampled on a clock of their own (never on a scrape), each
// process's recent history judged by the same diagnosis as `memdx run`, and the newest result kept
// as one immutable snapshot that any number of HTTP threads read at once.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "memdx/verdict.h"
#include "model/recording.h"
#include "proc/fds.h"
#include "proc/gpu.h"
#include "proc/process_files.h"
#include "proc/procfs.h"
#include "record/sampler.h"
#include "serve/top_choice.h"

namespace memdx::serve {

enum class TargetKind {
  kPid,     // 4242
  kName,    // the processes a NAME matches, as `memdx inspect` matches it, re-matched each tick
  kCgroup,  // cgroup:PATH, the processes of that cgroup (unified or v1 memory hierarchy)
  kTop,     // top:N, the N processes with the most PSS, re-chosen each tick (serve/top_choice.h)
};

struct TargetSpec {
  TargetKind kind = TargetKind::kPid;
  std::string text;         // as given on the command line
  pid_t pid = 0;            // kPid
  std::string name;         // kName
  std::string cgroup_path;  // kCgroup, as in /proc/PID/cgroup ("/system.slice/x.service")
  size_t top_count = 0;     // kTop
};

// How often to judge at a sampling interval: every fourth sample, but at least every interval and
// at most once a minute (a thousand processes' diagnosis costs about 40 ms of CPU at 180 samples
// each; a leak alert waits minutes anyway).
inline std::chrono::milliseconds judge_interval_for(std::chrono::milliseconds interval) {
  return std::max(interval, std::min(4 * interval, std::chrono::milliseconds(60000)));
}

// Parses one TARGET argument. Throws std::invalid_argument with the message to show.
TargetSpec parse_target(const std::string& text);

struct MonitorOptions {
  std::vector<TargetSpec> targets;
  bool tree = false;  // the targets' descendants too
  std::chrono::milliseconds interval{5000};
  // The diagnosis looks at the newest this many samples of each process (at the default interval,
  // 15 minutes; at a 15 s one, 45), and runs at most this often: its statistics are quadratic in
  // the points.
  size_t history_samples = 180;
  std::chrono::milliseconds judge_interval{20000};
  // Cardinality: at most this many processes get series of their own; the rest are summed into
  // one "other" series. Chosen by RSS.
  size_t max_processes = 100;
  size_t max_cgroups = 50;  // cgroups with series of their own, the first by path
  // smaps_rollup (PSS, USS, swap) walks the target's page tables under its mmap lock: this much
  // time per tick at most, round-robin over the processes.
  std::chrono::microseconds pss_budget{20000};
  // And a process's rollup is read again no sooner than this many times its last read's duration
  // (record::SamplerOptions::rollup_cost_factor): a 4.5 s read waits 7.5 minutes.
  double pss_cost_factor = 100;
  // A process that has not run since its last full read keeps its sample this long at most (its
  // file pages can be reclaimed and its PSS change while it sleeps).
  std::chrono::milliseconds idle_refresh{120000};
  // Its PSS (a page-table walk, most of an idle tick's cost at a thousand processes) at most this
  // often: it moves only when processes that share its pages come or go. Exported as its age.
  std::chrono::milliseconds idle_pss_refresh{600000};
  // Give freed heap back to the kernel after each tick (malloc_trim): for a process of its own
  // (`memdx serve`), not inside a program that embeds the library.
  bool trim_heap_after_tick = false;
  std::string proc_root = "/proc";
  std::string sys_root = "/sys";
};

// One process as last sampled and judged.
struct ProcessState {
  pid_t pid = 0;
  // Its series' identity. A process named by its pid keeps a `pid` label: that cannot churn. One
  // matched by a name, a cgroup, top:N or --tree is labelled by name, command and cgroup, and
  // `replica` numbers the processes that share those (the oldest 0): a restart takes over its
  // predecessor's series instead of adding one, so the series count follows how many run at once.
  bool pid_label = false;
  size_t replica = 0;
  std::string name;     // comm
  std::string command;  // argv[0]'s base name and the rest, digits folded: see command_template
  std::string cgroup;   // its memory cgroup's path, "" when unknown
  model::ProcessSample sample;
  std::optional<uint64_t> pss_bytes;  // the last PSS read (sample.pss_bytes is this tick's only)
  std::optional<uint64_t> uss_bytes;
  std::optional<int64_t> pss_age_ms;  // how old pss_bytes is
  std::optional<proc::FdCounts> fds;
  // GPU memory per device (NVML, DRM fdinfo); nullopt when nothing measures it.
  std::optional<std::vector<proc::ProcessGpuReading>> gpu;
  // The diagnosis (same rules as `memdx run`): whether a leak finding stands, the finding that
  // describes its memory best, and the seconds until the memory limit at that rate.
  bool judged = false;  // enough history for a verdict
  bool leak = false;
  double confidence = 0;
  double growth_bytes_per_second = 0;
  std::string growth_series;  // "rss_anon_bytes", ... of that finding; "" when none
  std::optional<double> seconds_to_limit;
};

// What a source could not be read, counted since the start (e.g. another user's process without
// root: "permission denied").
struct SourceError {
  std::string source;  // "/proc/4242/smaps_rollup"
  std::string message;
  uint64_t count = 0;
};

// A memory cgroup of served processes, by the path their `cgroup` label shows.
struct CgroupState {
  std::string path;
  std::optional<uint64_t> usage_bytes;
  std::optional<uint64_t> limit_bytes;  // memory.max (v1 memory.limit_in_bytes); absent: no limit
  std::optional<uint64_t> high_bytes;   // memory.high (v2)
  std::optional<double> psi_some_avg10;
  std::optional<double> psi_full_avg10;
};

struct Snapshot {
  uint64_t sequence = 0;  // 0: no sample yet
  std::vector<proc::GpuDeviceReading> gpu_devices;
  std::string nvml_note;  // why NVML is not used; empty when it is
  int64_t t_unix_ms = 0;
  std::vector<ProcessState> processes;  // by RSS, largest first, at most max_processes
  // The processes beyond max_processes, summed.
  size_t other_count = 0;
  uint64_t other_rss_bytes = 0;
  uint64_t other_pss_bytes = 0;
  // The memory cgroups of the served processes (at most max_cgroups).
  std::vector<CgroupState> cgroups;
  // The machine.
  uint64_t mem_total_bytes = 0;
  std::optional<uint64_t> mem_available_bytes;
  uint64_t swap_total_bytes = 0;
  uint64_t swap_free_bytes = 0;
  std::optional<double> psi_some_avg10;
  std::optional<double> psi_full_avg10;
  // memdx's own cost.
  double sample_seconds = 0;  // the last tick's sampling
  double judge_seconds = 0;   // the last diagnosis
  uint64_t samples_taken = 0;
  uint64_t ticks_late = 0;         // ticks that started later than their interval (the last overran)
  uint64_t pss_reads_skipped = 0;  // rollups left for a later tick by the PSS budget, in all
  uint64_t self_rss_bytes = 0;
  std::vector<SourceError> errors;
  std::vector<std::string> unmatched_targets;  // targets that matched no process this tick
  // The last diagnosis (schema memdx.verdict/1), shared by the snapshots until the next one.
  std::shared_ptr<const Verdict> verdict = std::make_shared<const Verdict>();
};

// The command template of a command line: the program's base name and its arguments with runs of
// digits replaced by "N" (so that "worker --id 17" and "worker --id 18" share one series), cut to
// 80 bytes. A label value that stays stable while processes come and go.
std::string command_template(const std::vector<std::string>& argv);

class Monitor {
 public:
  explicit Monitor(MonitorOptions options);
  ~Monitor();  // stops the thread
  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

  // The newest snapshot (sequence 0 before the first tick). Never blocks on sampling.
  std::shared_ptr<const Snapshot> latest() const;
  std::chrono::steady_clock::time_point started() const { return started_; }
  const MonitorOptions& options() const { return options_; }

  // One tick on the caller's thread, for tests: what the thread does each interval.
  void tick();
  // Starts the sampling thread (ticks every interval from now).
  void start();

 private:
  // One sample as the diagnosis needs it, in 40 bytes: /proc/PID/status gives KiB, so KiB in 32
  // bits lose nothing below 4 TiB (and saturate there). A thousand processes' histories fit in
  // 10 MiB.
  struct HistoryPoint {
    int64_t t_ms = 0;
    uint32_t rss_kib = 0;
    uint32_t rss_anon_kib = 0;
    uint32_t rss_file_kib = 0;
    uint32_t rss_shmem_kib = 0;
    uint32_t swap_kib = 0;
    uint32_t vsz_kib = 0;
    uint32_t fds = kNoFds;
    uint32_t threads = 0;
    static constexpr uint32_t kNoFds = UINT32_MAX;
    static HistoryPoint of(const model::ProcessSample& sample);
    model::ProcessSample sample(pid_t pid) const;
  };
  // The newest `capacity` points, oldest first, in one allocation (a deque's blocks cost a fifth
  // more at this size).
  template <typename Point>
  class Ring {
   public:
    void push(const Point& point, size_t capacity) {
      if (points_.size() < capacity) {
        if (points_.empty()) points_.reserve(capacity);
        points_.push_back(point);
        return;
      }
      points_[oldest_] = point;
      oldest_ = (oldest_ + 1) % points_.size();
    }
    size_t size() const { return points_.size(); }
    template <typename Visit>
    void for_each(Visit visit) const {
      for (size_t i = 0; i < points_.size(); ++i) visit(points_[(oldest_ + i) % points_.size()]);
    }
    // The i-th point, oldest first.
    const Point& at(size_t i) const { return points_[(oldest_ + i) % points_.size()]; }
    // A ring of `other`'s shape, every point `fill`, its newest `newest`: a series that begins
    // mid-history, aligned with the one it runs beside.
    template <typename Other>
    static Ring aligned_with(const Ring<Other>& other, size_t capacity, const Point& fill, const Point& newest) {
      Ring ring;
      ring.points_.reserve(capacity);
      ring.points_.assign(other.size(), fill);
      ring.oldest_ = other.oldest();
      if (!ring.points_.empty()) ring.points_[(ring.oldest_ + ring.points_.size() - 1) % ring.points_.size()] = newest;
      return ring;
    }
    size_t oldest() const { return oldest_; }

   private:
    std::vector<Point> points_;
    size_t oldest_ = 0;
  };
  using PointRing = Ring<HistoryPoint>;
  static constexpr uint32_t kNoGpu = UINT32_MAX;  // a tick GPU memory was not measured
  struct History {
    model::ProcessRecord record;
    PointRing samples;
    std::optional<uint64_t> pss_bytes;
    std::optional<uint64_t> uss_bytes;
    int64_t pss_t_ms = 0;
    std::string cgroup;
    std::string comm;
    std::string command;
    uint64_t start_ticks = 0;           // /proc/PID/stat starttime: a reused pid is another process
    std::optional<proc::FdCounts> fds;  // the last classification, and the tick it was made at
    uint64_t fds_sequence = 0;
    // GPU memory in KiB beside `samples`, once the process has held some (kNoGpu: not measured
    // that tick); before that, every point measured 0 when gpu_measured, else not measured. Most
    // processes never hold GPU memory and pay nothing for it.
    Ring<uint32_t> gpu_kib;
    bool gpu_measured = false;
  };
  // The pids to sample; `named` gets those a kPid target names.
  // `stats` gets the stat of every process it read (all of them when a target needs a scan).
  std::vector<pid_t> resolve(std::vector<std::string>& unmatched, std::set<pid_t>& named,
                             std::map<pid_t, proc::Stat>& stats);
  static void number_replicas(std::vector<ProcessState>& processes, const std::map<pid_t, History>& histories);
  void judge(Snapshot& snapshot, int64_t now_ms);
  void read_cgroups(Snapshot& snapshot);
  void read_gpu(Snapshot& snapshot);
  void note_error(const proc::ReadError& error);
  void run();

  MonitorOptions options_;
  proc::ProcFs fs_;
  record::Sampler sampler_;
  std::vector<TopByPss> tops_;  // one per target (the top:N ones use theirs)
  proc::GpuProbe gpu_;
  std::chrono::steady_clock::time_point started_;
  int64_t started_unix_ms_ = 0;
  std::map<pid_t, History> histories_;
  std::map<std::string, SourceError> errors_;
  uint64_t sequence_ = 0;
  uint64_t samples_taken_ = 0;
  uint64_t ticks_late_ = 0;
  uint64_t pss_skipped_ = 0;
  std::chrono::steady_clock::time_point last_judged_{};
  double last_judge_seconds_ = 0;
  std::shared_ptr<const Verdict> last_verdict_ = std::make_shared<const Verdict>();
  std::map<pid_t, ProcessState> last_judgement_;

  mutable std::mutex snapshot_mutex_;
  std::shared_ptr<const Snapshot> snapshot_;

  std::mutex stop_mutex_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace memdx::serve
