#include "record/process_tree.h"

#include <sys/wait.h>

#include "proc/process_files.h"

namespace memdx::record {

ProcessTreeTracker::ProcessTreeTracker(const proc::ProcFs& fs, pid_t root, std::set<pid_t> anchors)
    : fs_(fs), root_(root), anchors_(std::move(anchors)) {}

bool ProcessTreeTracker::admit(pid_t pid, pid_t ppid) const {
  if (pid == root_) return true;
  if (anchors_.count(pid) != 0) return false;
  if (anchors_.count(ppid) != 0) return true;
  auto parent = known_.find(ppid);
  return parent != known_.end() && parent->second.ours;
}

TreeChanges ProcessTreeTracker::refresh(int64_t now_ms) {
  TreeChanges changes;
  std::vector<pid_t> listed = fs_.list_pids();
  std::set<pid_t> present(listed.begin(), listed.end());
  find_exits(present, now_ms, changes);
  find_births(listed, now_ms, changes);
  previously_listed_ = std::move(present);
  return changes;
}

// Ours and alive: re-read stat to see an exit (gone, zombie, pid reused) or an exec (new comm).
void ProcessTreeTracker::find_exits(const std::set<pid_t>& present, int64_t now_ms, TreeChanges& changes) {
  for (auto it = records_.begin(); it != records_.end();) {
    pid_t pid = it->first;
    Known& known = known_[pid];
    std::optional<proc::Stat> stat;
    if (present.count(pid) != 0) {
      auto text = fs_.read_pid_file(pid, "stat");
      if (text.ok()) stat = proc::parse_stat(*text);
    }
    bool gone = !stat || stat->start_time_ticks != known.start_time_ticks || stat->state == 'Z' || stat->state == 'X';
    if (!gone) {
      if (stat->comm != known.comm) {
        known.comm = stat->comm;
        if (auto cmdline = fs_.read_pid_file(pid, "cmdline"); cmdline.ok() && !cmdline->empty()) {
          it->second.command = proc::parse_cmdline(*cmdline);
          changes.exec_changed.push_back(it->second);
        }
      }
      ++it;
      continue;
    }
    model::ProcessRecord record = it->second;
    record.exited_ms = now_ms;
    int status = -1;
    if (auto waited = wait_statuses_.find(pid); waited != wait_statuses_.end()) status = waited->second;
    else if (stat && stat->state == 'Z' && stat->exit_code) status = *stat->exit_code;
    if (status >= 0 && WIFEXITED(status)) record.exit_code = WEXITSTATUS(status);
    if (status >= 0 && WIFSIGNALED(status)) record.exit_signal = WTERMSIG(status);
    known.ours = false;
    changes.exited.push_back(std::move(record));
    it = records_.erase(it);
  }
}

// Only pids that were not listed on the previous pass are read: on a quiet system of a
// thousand processes a pass costs one readdir of /proc. The loop repeats while the tree grows,
// since after pid wrap-around a child may carry a lower pid than its parent.
void ProcessTreeTracker::find_births(const std::vector<pid_t>& listed, int64_t now_ms, TreeChanges& changes) {
  std::vector<std::pair<pid_t, proc::Stat>> candidates;
  for (pid_t pid : listed) {
    if (previously_listed_.count(pid) != 0 && pid != root_) continue;
    if (records_.count(pid) != 0) continue;
    auto text = fs_.read_pid_file(pid, "stat");
    if (!text.ok()) continue;
    if (auto stat = proc::parse_stat(*text)) candidates.emplace_back(pid, std::move(*stat));
  }
  bool grew = true;
  while (grew) {
    grew = false;
    for (auto& [pid, stat] : candidates) {
      if (records_.count(pid) != 0 || stat.state == 'Z' || !admit(pid, stat.ppid)) continue;
      Known& known = known_[pid];
      known = {stat.start_time_ticks, stat.comm, true};
      model::ProcessRecord record;
      record.pid = pid;
      record.ppid = stat.ppid;
      record.first_seen_ms = now_ms;
      if (auto cmdline = fs_.read_pid_file(pid, "cmdline"); cmdline.ok()) record.command = proc::parse_cmdline(*cmdline);
      if (record.command.empty()) record.command = {stat.comm};
      records_[pid] = record;
      changes.born.push_back(std::move(record));
      grew = true;
    }
  }
}

void ProcessTreeTracker::note_exit_status(pid_t pid, int wait_status) { wait_statuses_[pid] = wait_status; }

std::vector<pid_t> ProcessTreeTracker::alive() const {
  std::vector<pid_t> pids;
  pids.reserve(records_.size());
  for (const auto& [pid, record] : records_) pids.push_back(pid);
  return pids;
}

bool ProcessTreeTracker::root_alive() const { return records_.count(root_) != 0; }

}  // namespace memdx::record
