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
  if (auto fds = fs_.count_fd_entries(pid); fds.ok()) sample.fds = *fds;
  return true;
}

void Sampler::sample_rollup(pid_t pid, model::ProcessSample& sample) const {
  auto text = fs_.read_pid_file(pid, "smaps_rollup");
  if (!text.ok()) return;
  proc::SmapsCounters rollup = proc::parse_smaps_rollup(*text);
  sample.pss_bytes = rollup.pss_bytes;
  sample.swap_bytes = rollup.swap_bytes;
}

std::vector<model::ProcessSample> Sampler::sample(const std::vector<pid_t>& pids, int64_t t_ms) {
  std::vector<model::ProcessSample> samples;
  samples.reserve(pids.size());
  for (pid_t pid : pids) {
    model::ProcessSample sample;
    sample.t_ms = t_ms;
    if (sample_cheap(pid, sample)) samples.push_back(sample);
  }
  // Rollups round-robin from where the last tick stopped, until the budget is spent.
  auto started = std::chrono::steady_clock::now();
  size_t done = 0;
  for (; done < samples.size(); ++done) {
    if (std::chrono::steady_clock::now() - started > options_.rollup_budget) break;
    size_t index = (rollup_cursor_ + done) % samples.size();
    sample_rollup(samples[index].pid, samples[index]);
  }
  if (!samples.empty()) rollup_cursor_ = (rollup_cursor_ + done) % samples.size();
  last_rollup_coverage_ = samples.empty() ? 1.0 : static_cast<double>(done) / static_cast<double>(samples.size());
  return samples;
}

model::SystemSample Sampler::sample_system(int64_t t_ms, const std::string& cgroup_directory) const {
  model::SystemSample sample;
  sample.t_ms = t_ms;
  if (auto info = fs_.meminfo(); info.ok()) {
    sample.mem_available_bytes = info->mem_available_bytes.value_or(info->mem_free_bytes);
    sample.swap_free_bytes = info->swap_free_bytes;
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
