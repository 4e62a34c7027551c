// Samples the memory of a set of processes, tick by tick, without stalling them: the cheap
// files every tick, smaps_rollup (PSS, swap) only within a per-tick time budget, round-robin.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <vector>

#include "model/recording.h"
#include "proc/procfs.h"

namespace memdx::record {

struct SamplerOptions {
  // smaps_rollup walks the page tables under the target's mmap lock; above this much time per
  // tick the remaining processes wait for a later tick.
  std::chrono::microseconds rollup_budget{20000};
};

class Sampler {
 public:
  Sampler(const proc::ProcFs& fs, SamplerOptions options);

  // One sample per pid that could be read; a pid that exited meanwhile is skipped.
  std::vector<model::ProcessSample> sample(const std::vector<pid_t>& pids, int64_t t_ms);
  model::SystemSample sample_system(int64_t t_ms, const std::string& cgroup_directory) const;

  // Fraction of processes that got a rollup on the last tick (1.0: all of them).
  double last_rollup_coverage() const { return last_rollup_coverage_; }

 private:
  bool sample_cheap(pid_t pid, model::ProcessSample& sample) const;
  void sample_rollup(pid_t pid, model::ProcessSample& sample) const;

  const proc::ProcFs& fs_;
  SamplerOptions options_;
  size_t rollup_cursor_ = 0;
  double last_rollup_coverage_ = 1.0;
};

}  // namespace memdx::record
