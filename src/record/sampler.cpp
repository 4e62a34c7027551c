#include "record/sampler.h"

#include "proc/cgroup_files.h"
#include "proc/kv.h"
#include "proc/process_files.h"
#include "proc/smaps.h"

namespace memdx::record {

Sampler::Sampler(const proc::ProcFs& fs, SamplerOptions options) : fs_(fs), options_(options) {}

bool Sampler::sample_cheap(pid_t pid, model::ProcessSample& sample) const {
  auto text = fs_.read_pid_file(pid, "status");
  if (!text.ok()) return false;
  proc::Status status = proc::parse_status(*text);
  if (status.state == 'Z' || status.state == 'X') return false;
  sample.pid = pid;
  sample.rss_bytes = status.vm_rss_bytes.value_or(0);
  sample.rss_anon_bytes = status.rss_anon_bytes.value_or(0);
  sample.rss_shmem_bytes = status.rss_shmem_bytes.value_or(0);
  sample.rss_file_bytes = status.rss_file_bytes.value_or(
      sample.rss_bytes - std::min(sample.rss_bytes, sample.rss_anon_bytes + sample.rss_shmem_bytes));
  sample.vsz_bytes = status.vm_size_bytes.value_or(0);
  sample.swap_bytes = status.vm_swap_bytes.value_or(0);
  sample.threads = status.threads;
  if (options_.count_fds) {
    if (auto fds = fs_.count_fd_entries(pid); fds.ok()) sample.fds = *fds;
  }
  return true;
}

void Sampler::sample_rollup(pid_t pid, model::ProcessSample& sample) {
  auto text = fs_.read_pid_file(pid, "smaps_rollup");
  if (!text.ok()) {
    if (text.error().kind != proc::ReadErrorKind::kProcessGone) rollup_errors_.push_back(text.error());
    return;
  }
  proc::SmapsCounters rollup = proc::parse_smaps_rollup(*text);
  sample.pss_bytes = rollup.pss_bytes;
  sample.uss_bytes = rollup.uss_bytes();
  sample.swap_bytes = rollup.swap_bytes;
}

bool Sampler::reuse_if_idle(pid_t pid, int64_t t_ms, const ActivityLookup& activity_of,
                            model::ProcessSample& sample) const {
  if (!activity_of) return false;
  auto previous = previous_.find(pid);
  if (previous == previous_.end() || !previous->second.activity) return false;
  if (t_ms - previous->second.full_read_ms >= options_.idle_refresh_ms) return false;
  std::optional<ProcessTreeTracker::Activity> now = activity_of(pid);
  if (!now || !(*now == *previous->second.activity)) return false;
  sample = previous->second.sample;
  sample.t_ms = t_ms;
  return true;
}

std::vector<model::ProcessSample> Sampler::sample(const std::vector<pid_t>& pids, int64_t t_ms,
                                                  const ActivityLookup& activity_of) {
  last_t_ms_ = t_ms;
  std::vector<model::ProcessSample> samples;
  std::vector<size_t> fresh;    // indexes of samples read in full this tick
  std::vector<size_t> pending;  // idle ones kept without a PSS yet: their rollup is still due
  samples.reserve(pids.size());
  rollup_errors_.clear();
  for (pid_t pid : pids) {
    model::ProcessSample sample;
    sample.t_ms = t_ms;
    if (reuse_if_idle(pid, t_ms, activity_of, sample)) {
      previous_[pid].reused_ms = t_ms;
      if (!sample.pss_bytes) pending.push_back(samples.size());
      samples.push_back(sample);
      continue;
    }
    if (!sample_cheap(pid, sample)) continue;
    if (auto known = previous_.find(pid); known != previous_.end()) {
      std::optional<ProcessTreeTracker::Activity> now = activity_of ? activity_of(pid) : std::nullopt;
      known->second.idle_refresh = now && known->second.activity && *now == *known->second.activity;
    }
    fresh.push_back(samples.size());
    samples.push_back(sample);
  }
  // Rollups round-robin over the fresh samples (and the kept ones that never had one: a budget
  // too small for a thousand processes at once must not leave the idle ones without a PSS) from
  // where the last tick stopped, within budget.
  std::vector<size_t> due = fresh;
  due.insert(due.end(), pending.begin(), pending.end());
  auto started = std::chrono::steady_clock::now();
  size_t done = 0;  // visited: read, or not due yet by rollup_cost_factor
  for (; done < due.size(); ++done) {
    if (std::chrono::steady_clock::now() - started > options_.rollup_budget) break;
    model::ProcessSample& s = samples[due[(rollup_cursor_ + done) % due.size()]];
    if (auto known = previous_.find(s.pid); known != previous_.end()) {
      const Previous& previous = known->second;
      if (options_.rollup_cost_factor > 0 && t_ms < previous.next_rollup_ms) continue;
      if (previous.idle_refresh && previous.rollup_ms >= 0 &&
          t_ms - previous.rollup_ms < options_.idle_rollup_refresh_ms) {
        continue;
      }
    }
    auto read_started = std::chrono::steady_clock::now();
    sample_rollup(s.pid, s);
    if (s.pss_bytes) previous_[s.pid].rollup_ms = t_ms;
    if (options_.rollup_cost_factor > 0) {
      double read_ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - read_started).count();
      previous_[s.pid].next_rollup_ms = t_ms + static_cast<int64_t>(read_ms * options_.rollup_cost_factor);
    }
  }
  if (!due.empty()) rollup_cursor_ = (rollup_cursor_ + done) % due.size();
  last_rollups_skipped_ = due.size() - done;
  for (size_t index : pending) {
    const model::ProcessSample& s = samples[index];
    if (s.pss_bytes) previous_[s.pid].sample = s;  // kept from now on with its PSS
  }

  // Remember full reads (with their PSS when it was read) for the idle check of later ticks.
  for (size_t index : fresh) {
    const model::ProcessSample& s = samples[index];
    Previous& previous = previous_[s.pid];
    if (!s.pss_bytes && previous.sample.pss_bytes && previous.sample.pid == s.pid) {
      model::ProcessSample kept = s;
      kept.pss_bytes = previous.sample.pss_bytes;
      previous.sample = kept;
    } else {
      previous.sample = s;
    }
    previous.activity = activity_of ? activity_of(s.pid) : std::nullopt;
    previous.full_read_ms = t_ms;
  }
  return samples;
}

bool Sampler::reused_last_tick(pid_t pid) const {
  auto known = previous_.find(pid);
  return known != previous_.end() && known->second.reused_ms == last_t_ms_;
}

void Sampler::forget(pid_t pid) {
  previous_.erase(pid);
}

model::SystemSample Sampler::sample_system(int64_t t_ms, const std::string& cgroup_directory) const {
  model::SystemSample sample;
  sample.t_ms = t_ms;
  if (auto info = fs_.meminfo(); info.ok()) {
    sample.mem_available_bytes = info->mem_available_bytes.value_or(info->mem_free_bytes);
    sample.swap_free_bytes = info->swap_free_bytes;  // 0 without swap: a figure, not "unread"
  }
  if (auto psi = fs_.system_memory_pressure(); psi && psi->some) sample.psi_some_avg10 = psi->some->avg10;
  if (!cgroup_directory.empty()) {
    for (const char* name : {"memory.current", "memory.usage_in_bytes"}) {
      auto text = fs_.read_file(cgroup_directory + "/" + name);
      if (text.ok()) {
        sample.cgroup_current_bytes = proc::parse_u64(*text);
        break;
      }
    }
  }
  return sample;
}

}  // namespace memdx::record
