// Samples the memory of a set of processes, tick by tick, without stalling them: the cheap
// files every tick, smaps_rollup (PSS, swap) only within a per-tick time budget, round-robin.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <unordered_map>
#include <vector>

#include "model/recording.h"
#include "proc/procfs.h"
#include "record/process_tree.h"

namespace memdx::record {

struct SamplerOptions {
  // smaps_rollup walks the page tables under the target's mmap lock; above this much time per
  // tick the remaining processes wait for a later tick. Set from the interval by the session.
  std::chrono::microseconds rollup_budget{20000};
  // An idle process (it has not run since its last full read: same CPU nanoseconds, faults, size
  // and threads) keeps its last sample, re-read in full at least this often all the same.
  int64_t idle_refresh_ms = 30000;
  // Of those refreshes, the smaps_rollup read (the costly part: a page-table walk) comes at most
  // this often: an idle process's PSS moves only when processes sharing its pages come or go, and
  // its RSS is re-read from status at every refresh all the same. 0: at every refresh.
  int64_t idle_rollup_refresh_ms = 0;
  // When > 0, a process's smaps_rollup is read again no sooner than this many times as long as
  // its last read took after that read: with 100, a target whose read takes 4.5 s (a 200 GB
  // process) is read every 7.5 minutes at most, and no target spends more than 1 % of its time
  // with memdx holding its mmap lock. 0: every tick, within rollup_budget.
  double rollup_cost_factor = 0;
  // Count each process's open fds (a listing of /proc/PID/fd) every tick. Off where the caller
  // classifies them itself and fills ProcessSample::fds.
  bool count_fds = true;
};

using ActivityLookup = std::function<std::optional<ProcessTreeTracker::Activity>(pid_t)>;

class Sampler {
 public:
  Sampler(const proc::ProcFs& fs, SamplerOptions options);

  // One sample per pid that could be read; a pid that exited meanwhile is skipped. With
  // `activity_of`, processes that have not run since their last full read are not read again.
  std::vector<model::ProcessSample> sample(const std::vector<pid_t>& pids, int64_t t_ms,
                                           const ActivityLookup& activity_of = {});
  model::SystemSample sample_system(int64_t t_ms, const std::string& cgroup_directory) const;

  // Drops what is remembered of an exited process.
  void forget(pid_t pid);

  // Whether the last tick kept `pid`'s previous sample (idle by activity_of) instead of reading it.
  bool reused_last_tick(pid_t pid) const;

  // Rollups that were due on the last tick but did not fit in its budget.
  size_t last_rollups_skipped() const { return last_rollups_skipped_; }

  // The smaps_rollup reads of the last tick that failed for another reason than the process's
  // exit (permission denied, say): PSS is then missing, and the caller says why.
  const std::vector<proc::ReadError>& last_rollup_errors() const { return rollup_errors_; }

 private:
  bool sample_cheap(pid_t pid, model::ProcessSample& sample) const;
  void sample_rollup(pid_t pid, model::ProcessSample& sample);

  struct Previous {
    model::ProcessSample sample;
    std::optional<ProcessTreeTracker::Activity> activity;
    int64_t full_read_ms = 0;
    int64_t next_rollup_ms = 0;  // rollup_cost_factor: not before this tick time
    int64_t rollup_ms = -1;      // the tick of the last smaps_rollup read
    bool idle_refresh = false;   // this tick's full read is the periodic one of an idle process
    int64_t reused_ms = -1;      // the tick that kept this sample
  };
  bool reuse_if_idle(pid_t pid, int64_t t_ms, const ActivityLookup& activity_of, model::ProcessSample& sample) const;

  const proc::ProcFs& fs_;
  SamplerOptions options_;
  std::unordered_map<pid_t, Previous> previous_;
  size_t rollup_cursor_ = 0;
  int64_t last_t_ms_ = -1;
  size_t last_rollups_skipped_ = 0;
  std::vector<proc::ReadError> rollup_errors_;
};

}  // namespace memdx::record
