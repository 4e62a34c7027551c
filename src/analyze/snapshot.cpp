#include "analyze/snapshot.h"

#include <unistd.h>

#include <algorithm>
#include <set>

#include "analyze/notes.h"
#include "analyze/regions.h"
#include "proc/cgroup_files.h"
#include "proc/gpu.h"
#include "proc/process_files.h"
#include "proc/smaps.h"

namespace memdx::analyze {
namespace {

using proc::ReadErrorKind;

std::vector<pid_t> sorted(std::vector<pid_t> pids) {
  std::sort(pids.begin(), pids.end());
  return pids;
}

// Fills the memory totals from status (always readable) and, where available, smaps_rollup.
void fill_memory(model::MemoryTotals& memory, const proc::Status& status, const proc::SmapsCounters* rollup) {
  memory.vsz_bytes = status.vm_size_bytes.value_or(0);
  memory.peak_rss_bytes = status.vm_hwm_bytes.value_or(0);
  memory.locked_bytes = status.vm_lck_bytes.value_or(0);
  memory.swap_bytes = status.vm_swap_bytes.value_or(0);
  memory.rss_bytes = status.vm_rss_bytes.value_or(0);
  memory.rss_anon_bytes = status.rss_anon_bytes.value_or(0);
  memory.rss_shmem_bytes = status.rss_shmem_bytes.value_or(0);
  memory.rss_file_bytes = status.rss_file_bytes.value_or(
      memory.rss_bytes - std::min(memory.rss_bytes, memory.rss_anon_bytes + memory.rss_shmem_bytes));
  if (rollup == nullptr) return;
  // The rollup walks the page tables, so it is exact where status counters may lag; keep the
  // kernel's own anon/shmem split and give file-backed the remainder so the parts add up.
  memory.rss_bytes = rollup->rss_bytes;
  memory.rss_anon_bytes = std::min(rollup->anonymous_bytes, memory.rss_bytes);
  memory.rss_shmem_bytes = std::min(memory.rss_shmem_bytes, memory.rss_bytes - memory.rss_anon_bytes);
  memory.rss_file_bytes = memory.rss_bytes - memory.rss_anon_bytes - memory.rss_shmem_bytes;
  memory.pss_bytes = rollup->pss_bytes;
  memory.uss_bytes = rollup->uss_bytes();
  memory.swap_bytes = rollup->swap_bytes;
  if (rollup->has_swap_pss) memory.swap_pss_bytes = rollup->swap_pss_bytes;
}

}  // namespace

proc::Result<model::MemoryTotals> read_memory_totals(const proc::ProcFs& fs, pid_t pid) {
  auto status_text = fs.read_pid_file(pid, "status");
  if (!status_text.ok()) return status_text.error();
  proc::Status status = proc::parse_status(*status_text);
  std::optional<proc::SmapsCounters> rollup;
  // A kernel thread or a zombie has no address space to roll up.
  if (status.vm_size_bytes) {
    if (auto text = fs.read_pid_file(pid, "smaps_rollup"); text.ok()) rollup = proc::parse_smaps_rollup(*text);
  }
  model::MemoryTotals memory;
  fill_memory(memory, status, rollup ? &*rollup : nullptr);
  return memory;
}

namespace {

RegionContext region_context(const proc::ProcFs& fs, pid_t pid) {
  RegionContext context;
  context.thread_stack_pointers = fs.thread_stack_pointers(pid);
  auto mountinfo = fs.read_pid_file(pid, "mountinfo");
  if (mountinfo.ok()) {
    for (const proc::MountEntry& mount : proc::parse_mountinfo(*mountinfo)) {
      if (mount.fs_type == "tmpfs") context.tmpfs_devices.insert({mount.dev_major, mount.dev_minor});
    }
  }
  return context;
}

model::FdSummary summarize_fds(const proc::FdCounts& counts) {
  model::FdSummary summary;
  summary.total = counts.total;
  for (size_t i = 0; i < counts.by_type.size(); ++i) {
    if (counts.by_type[i] == 0) continue;
    summary.by_type[std::string(proc::fd_type_name(static_cast<proc::FdType>(i)))] = counts.by_type[i];
  }
  return summary;
}

proc::ReadError gone(pid_t pid, const std::string& path) {
  return {ReadErrorKind::kProcessGone, path, "process " + std::to_string(pid) + " exited while it was being read"};
}

// Records a failed optional read; returns false when the failure means the process is gone.
bool note_failure(model::ProcessSnapshot& snapshot, const proc::ReadError& error, const char* file) {
  if (error.kind == ReadErrorKind::kProcessGone) return false;
  snapshot.unreadable.emplace_back(file);
  return true;
}

}  // namespace

std::vector<pid_t> ProcessTable::children(pid_t pid) const {
  auto it = children_of.find(pid);
  return it == children_of.end() ? std::vector<pid_t>{} : sorted(it->second);
}

std::vector<pid_t> ProcessTable::subtree(pid_t root) const {
  std::vector<pid_t> order;
  std::vector<pid_t> stack = {root};
  while (!stack.empty()) {
    pid_t pid = stack.back();
    stack.pop_back();
    order.push_back(pid);
    std::vector<pid_t> kids = children(pid);
    for (auto it = kids.rbegin(); it != kids.rend(); ++it) stack.push_back(*it);
  }
  return order;
}

ProcessTable scan_process_table(const proc::ProcFs& fs) {
  ProcessTable table;
  proc::Result<std::vector<pid_t>> pids = fs.list_pids();
  if (!pids.ok()) return table;  // no descendants can be found: the tree is its root alone
  for (pid_t pid : *pids) {
    auto text = fs.read_pid_file(pid, "stat");
    if (!text.ok()) continue;  // exited since the directory listing
    auto stat = proc::parse_stat(*text);
    if (!stat) continue;
    table.parent_of[pid] = stat->ppid;
    table.children_of[stat->ppid].push_back(pid);
  }
  return table;
}

proc::Result<model::ProcessSnapshot> take_process_snapshot(const proc::ProcFs& fs, pid_t pid,
                                                           const SnapshotOptions& options,
                                                           std::optional<proc::FdCounts>* fds_out) {
  auto stat_text = fs.read_pid_file(pid, "stat");
  if (!stat_text.ok()) return stat_text.error();
  auto stat = proc::parse_stat(*stat_text);
  if (!stat) return gone(pid, "stat");
  auto status_text = fs.read_pid_file(pid, "status");
  if (!status_text.ok()) return status_text.error();
  proc::Status status = proc::parse_status(*status_text);

  model::ProcessSnapshot snapshot;
  snapshot.pid = pid;
  snapshot.ppid = stat->ppid;
  snapshot.comm = stat->comm;
  snapshot.state = stat->state;
  snapshot.uid = status.real_uid;
  snapshot.threads = status.threads != 0 ? status.threads : stat->threads;
  if (status.ns_pids.size() > 1 && status.ns_pids.back() != pid) snapshot.container_pid = status.ns_pids.back();
  snapshot.is_kernel_thread = status.is_kernel_thread;
  snapshot.is_zombie = stat->state == 'Z' || stat->state == 'X';

  if (auto cmdline = fs.read_pid_file(pid, "cmdline"); cmdline.ok()) {
    snapshot.command = proc::parse_cmdline(*cmdline);
  } else if (!note_failure(snapshot, cmdline.error(), "cmdline")) {
    return cmdline.error();
  }

  bool has_mm = !snapshot.is_kernel_thread && !snapshot.is_zombie;
  std::optional<proc::SmapsCounters> rollup;
  std::vector<proc::Mapping> mappings;
  bool smaps_read = false;
  if (has_mm) {
    auto rollup_text = fs.read_pid_file(pid, "smaps_rollup");
    if (rollup_text.ok()) {
      rollup = proc::parse_smaps_rollup(*rollup_text);
    } else if (rollup_text.error().kind != ReadErrorKind::kNotFound &&
               !note_failure(snapshot, rollup_text.error(), "smaps_rollup")) {
      return rollup_text.error();
    }
    // Kernels before 4.14 have no smaps_rollup: the full smaps provides the totals too.
    bool need_smaps = options.read_regions || !rollup;
    if (need_smaps) {
      auto smaps_text = fs.read_pid_file(pid, "smaps");
      if (smaps_text.ok()) {
        mappings = proc::parse_smaps(*smaps_text);
        smaps_read = true;
        if (!rollup) rollup = proc::sum_counters(mappings);
      } else if (!note_failure(snapshot, smaps_text.error(), "smaps")) {
        return smaps_text.error();
      }
    }
  }
  fill_memory(snapshot.memory, status, rollup ? &*rollup : nullptr);

  if (smaps_read && options.read_regions) {
    RegionBreakdown breakdown = break_down(mappings, region_context(fs, pid), options.top_regions);
    snapshot.regions = std::move(breakdown.totals);
    snapshot.top_regions = std::move(breakdown.top);
    snapshot.modules = std::move(breakdown.modules);
    snapshot.regions_measured = true;
  }

  if (!snapshot.is_zombie) {
    auto fds = fs.count_fds(pid);
    if (fds.ok()) {
      snapshot.fds = summarize_fds(*fds);
      if (fds_out != nullptr) *fds_out = *fds;
    } else if (!note_failure(snapshot, fds.error(), "fd")) {
      return fds.error();
    }
  }

  // Same pid, same start time, still alive: nothing we read belongs to a successor process or
  // to the zombie this one became half-way through (whose smaps reads back empty).
  auto again = fs.read_pid_file(pid, "stat");
  if (!again.ok()) return gone(pid, "stat");
  auto restat = proc::parse_stat(*again);
  if (!restat || restat->start_time_ticks != stat->start_time_ticks) return gone(pid, "stat");
  bool died = restat->state == 'Z' || restat->state == 'X' || (restat->flags & proc::kTaskFlagExiting) != 0;
  if (died && !snapshot.is_zombie) return gone(pid, "stat");
  return snapshot;
}

namespace {

model::PsiSummary summarize_psi(const proc::Psi& psi) {
  model::PsiSummary summary;
  if (psi.some) {
    summary.some_avg10 = psi.some->avg10;
    summary.some_avg60 = psi.some->avg60;
  }
  if (psi.full) {
    summary.full_avg10 = psi.full->avg10;
    summary.full_avg60 = psi.full->avg60;
  }
  return summary;
}

}  // namespace

model::SystemSnapshot take_system_snapshot(const proc::ProcFs& fs, pid_t pid) {
  model::SystemSnapshot system;
  if (auto info = fs.meminfo(); info.ok()) {
    system.mem_total_bytes = info->mem_total_bytes;
    system.mem_available_bytes = info->mem_available_bytes;
    system.swap_total_bytes = info->swap_total_bytes;
    system.swap_free_bytes = info->swap_free_bytes;
  }
  if (auto psi = fs.system_memory_pressure()) system.psi = summarize_psi(*psi);
  if (auto cgroup = fs.memory_cgroup(pid)) {
    model::CgroupSummary summary;
    summary.version = cgroup->version;
    summary.path = cgroup->path;
    summary.memory_current_bytes = cgroup->current_bytes;
    summary.memory_max_bytes = cgroup->max_bytes;
    summary.memory_high_bytes = cgroup->high_bytes;
    summary.oom_events = cgroup->events_oom;
    summary.oom_kill_events = cgroup->events_oom_kill;
    summary.anon_bytes = cgroup->stat_anon_bytes;
    summary.file_bytes = cgroup->stat_file_bytes;
    if (cgroup->psi) summary.psi = summarize_psi(*cgroup->psi);
    system.cgroup = std::move(summary);
  }
  return system;
}

namespace {

// The pids to read, in display order: each target, followed by its descendants with `tree`.
std::vector<pid_t> pids_to_read(const std::vector<pid_t>& targets, bool tree, const ProcessTable& table) {
  std::vector<pid_t> order;
  std::set<pid_t> seen;
  for (pid_t target : targets) {
    std::vector<pid_t> pids = tree ? table.subtree(target) : std::vector<pid_t>{target};
    for (pid_t pid : pids) {
      if (seen.insert(pid).second) order.push_back(pid);
    }
  }
  return order;
}

proc::ReadError gone(const std::string& sentence) {
  return proc::ReadError{proc::ReadErrorKind::kProcessGone, "", sentence};
}

// GPU memory of every process read: one NVML pass for all of them, and the DRM fdinfo of the
// processes that hold a DRM fd.
void read_gpu_memory(const proc::ProcFs& fs, model::InspectReport& report,
                     const std::map<pid_t, std::optional<proc::FdCounts>>& fds_of) {
  proc::GpuProbe probe(fs);
  std::vector<proc::NvidiaCandidate> candidates;
  for (const model::ProcessSnapshot& p : report.processes) {
    const std::optional<proc::FdCounts>& fds = fds_of.at(p.pid);
    candidates.push_back(proc::nvidia_candidate(p.pid, fds ? &*fds : nullptr));
  }
  probe.refresh(candidates);  // one NVML pass for every process
  for (model::ProcessSnapshot& p : report.processes) {
    const std::optional<proc::FdCounts>& fds = fds_of.at(p.pid);
    std::optional<std::vector<proc::ProcessGpuReading>> usage = probe.usage(p.pid, fds ? &*fds : nullptr);
    if (!usage) continue;
    p.gpu.emplace();
    for (proc::ProcessGpuReading& reading : *usage) {
      p.gpu->push_back({std::move(reading.device_id), reading.bytes, std::move(reading.region_bytes)});
    }
  }
  for (const proc::GpuDeviceReading& device : probe.devices()) {
    report.gpu_devices.push_back(
        {device.id, device.name,
         device.source == proc::GpuSource::kNvml ? model::GpuSource::kNvml : model::GpuSource::kDrmFdinfo,
         device.total_bytes, device.used_bytes});
  }
  report.nvml_note = probe.nvml_note();
}

}  // namespace

proc::Result<model::InspectReport> inspect_processes(const proc::ProcFs& fs, const std::vector<pid_t>& targets,
                                                     bool tree, size_t top_regions) {
  ProcessTable table = scan_process_table(fs);
  SnapshotOptions snapshot_options;
  snapshot_options.top_regions = top_regions;
  std::set<pid_t> roots(targets.begin(), targets.end());

  model::InspectReport report;
  report.tree = tree;
  report.reader_is_root = ::geteuid() == 0;
  std::map<pid_t, std::optional<proc::FdCounts>> fds_of;
  for (pid_t pid : pids_to_read(targets, tree, table)) {
    auto snapshot = take_process_snapshot(fs, pid, snapshot_options, &fds_of[pid]);
    if (!snapshot.ok()) {
      bool is_root = roots.count(pid) != 0;
      if (snapshot.error().kind == proc::ReadErrorKind::kProcessGone) {
        if (is_root && targets.size() == 1)
          return gone("process " + std::to_string(pid) + " exited before it could be read");
        report.exited_during_read.push_back(pid);
        continue;
      }
      return snapshot.error();
    }
    snapshot->children = table.children(pid);
    report.processes.push_back(std::move(snapshot).value());
  }
  if (report.processes.empty()) return gone("every matching process exited before it could be read");
  read_gpu_memory(fs, report, fds_of);
  report.system = take_system_snapshot(fs, report.processes.front().pid);
  report.notes = notes_for(report);
  return report;
}

}  // namespace memdx::analyze
