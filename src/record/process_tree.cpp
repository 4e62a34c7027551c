#include "record/process_tree.h"

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "proc/kv.h"
#include "proc/process_files.h"

namespace memdx::record {

namespace {

// Descriptors memdx needs besides the kept files: the recording, the tracer's collector, reads of
// /proc by path, the terminal.
constexpr rlim_t kReservedDescriptors = 192;

// Each followed process may hold two kept files and, when traced, one collector connection: two
// thirds of what is left after the reserve go to kept files.
size_t kept_file_budget() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur <= kReservedDescriptors) return 0;
  rlim_t usable = std::min<rlim_t>(limit.rlim_cur, 1 << 20) - kReservedDescriptors;
  return static_cast<size_t>(usable / 3 * 2);
}

}  // namespace

ProcessTreeTracker::ProcessTreeTracker(const proc::ProcFs& fs, pid_t root, std::set<pid_t> anchors)
    : fs_(fs), root_(root), anchors_(std::move(anchors)), kept_file_budget_(kept_file_budget()) {}

bool ProcessTreeTracker::admit(pid_t pid, pid_t ppid) const {
  if (pid == root_) return true;
  if (anchors_.count(pid) != 0) return false;
  if (anchors_.count(ppid) != 0) return true;
  auto parent = known_.find(ppid);
  return parent != known_.end() && parent->second.ours;
}

TreeChanges ProcessTreeTracker::refresh(int64_t now_ms) {
  TreeChanges changes;
  proc::Result<std::vector<pid_t>> listed = fs_.list_pids();
  // Without the list nothing can be said to have exited or been born: try again next time.
  if (!listed.ok()) return changes;
  std::set<pid_t> present(listed->begin(), listed->end());
  find_exits(present, now_ms, changes);
  for (pid_t unread : find_births(*listed, now_ms, changes)) present.erase(unread);
  previously_listed_ = std::move(present);
  record_unseen_root(now_ms, changes);
  return changes;
}

ProcessTreeTracker::Probe ProcessTreeTracker::read_cpu_ns(Known& known, std::optional<uint64_t>& cpu_ns) {
  if (!known.schedstat_file) return Probe::kAlive;
  int error = 0;
  if (!known.schedstat_file->read(buffer_, &error)) return error == ESRCH ? Probe::kGone : Probe::kUnreadable;
  // "cpu_ns wait_ns timeslices": nanoseconds, where stat's utime/stime move in 10 ms ticks.
  cpu_ns = proc::parse_u64(buffer_.substr(0, buffer_.find(' ')));
  return Probe::kAlive;
}

// A process that has not run since its stat was read cannot have exited, exec'd or faulted, so
// its stat is not read again for a while: on a tree of idle processes this halves the reads.
// A process gone for good fails the schedstat read at once (the kept file pins the old task).
ProcessTreeTracker::Probe ProcessTreeTracker::read_stat(pid_t pid, Known& known, int64_t now_ms,
                                                        std::optional<proc::Stat>& stat) {
  constexpr int64_t kStatRefreshMs = 5000;
  std::optional<uint64_t> cpu_ns;
  if (Probe probe = read_cpu_ns(known, cpu_ns); probe != Probe::kAlive) return probe;
  bool ran = !cpu_ns || !known.activity || known.activity->cpu_ns != *cpu_ns;
  if (!ran && known.last_stat && now_ms - known.stat_read_ms < kStatRefreshMs) {
    stat = known.last_stat;
    return Probe::kAlive;
  }
  if (known.stat_file) {
    int error = 0;
    if (!known.stat_file->read(buffer_, &error)) return error == ESRCH ? Probe::kGone : Probe::kUnreadable;
    stat = proc::parse_stat(buffer_);
  } else if (auto text = fs_.read_pid_file(pid, "stat"); text.ok()) {
    stat = proc::parse_stat(*text);
  } else {
    bool gone =
        text.error().kind == proc::ReadErrorKind::kProcessGone || text.error().kind == proc::ReadErrorKind::kNotFound;
    return gone ? Probe::kGone : Probe::kUnreadable;
  }
  if (!stat) return Probe::kUnreadable;
  known.last_stat = stat;
  known.stat_read_ms = now_ms;
  known.activity.reset();
  if (cpu_ns) known.activity = Activity{*cpu_ns, stat->faults, stat->vsize_bytes, stat->rss_pages, stat->threads};
  return Probe::kAlive;
}

void ProcessTreeTracker::keep_files(pid_t pid, Known& known) {
  if (kept_files_ + 2 > kept_file_budget_) return;
  std::string dir = fs_.proc_root() + "/" + std::to_string(pid);
  known.stat_file = proc::KeptFile::open(dir + "/stat");
  known.schedstat_file = proc::KeptFile::open(dir + "/schedstat");
  kept_files_ += (known.stat_file ? 1 : 0) + (known.schedstat_file ? 1 : 0);
}

void ProcessTreeTracker::drop_files(Known& known) {
  kept_files_ -= (known.stat_file ? 1 : 0) + (known.schedstat_file ? 1 : 0);
  known.stat_file.reset();
  known.schedstat_file.reset();
}

// Ours and alive: re-read stat to see an exit (gone, zombie, pid reused) or an exec (new comm).
void ProcessTreeTracker::find_exits(const std::set<pid_t>& present, int64_t now_ms, TreeChanges& changes) {
  for (auto it = records_.begin(); it != records_.end();) {
    pid_t pid = it->first;
    Known& known = known_[pid];
    std::optional<proc::Stat> stat;
    Probe probe = present.count(pid) != 0 ? read_stat(pid, known, now_ms, stat) : Probe::kGone;
    if (probe == Probe::kUnreadable) {
      ++it;  // alive as far as anyone knows; looked at again next time
      continue;
    }
    bool gone = probe == Probe::kGone || stat->start_time_ticks != known.start_time_ticks || stat->state == 'Z' ||
                stat->state == 'X';
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
    if (auto waited = wait_statuses_.find(pid); waited != wait_statuses_.end())
      status = waited->second;
    else if (stat && stat->state == 'Z' && stat->exit_code)
      status = *stat->exit_code;
    if (status >= 0 && WIFEXITED(status)) record.exit_code = WEXITSTATUS(status);
    if (status >= 0 && WIFSIGNALED(status)) record.exit_signal = WTERMSIG(status);
    known.ours = false;
    drop_files(known);
    known.activity.reset();
    known.last_stat.reset();
    changes.exited.push_back(std::move(record));
    it = records_.erase(it);
  }
}

// Only pids that were not listed on the previous pass are read: on a quiet system of a
// thousand processes a pass costs one readdir of /proc. The loop repeats while the tree grows,
// since after pid wrap-around a child may carry a lower pid than its parent.
std::set<pid_t> ProcessTreeTracker::find_births(const std::vector<pid_t>& listed, int64_t now_ms,
                                                TreeChanges& changes) {
  std::vector<std::pair<pid_t, proc::Stat>> candidates;
  std::set<pid_t> unread;
  for (pid_t pid : listed) {
    if (previously_listed_.count(pid) != 0 && pid != root_) continue;
    if (records_.count(pid) != 0) continue;
    auto text = fs_.read_pid_file(pid, "stat");
    if (!text.ok()) {
      if (text.error().kind == proc::ReadErrorKind::kOther) unread.insert(pid);  // not gone: retry
      continue;
    }
    if (auto stat = proc::parse_stat(*text)) candidates.emplace_back(pid, std::move(*stat));
  }
  bool grew = true;
  while (grew) {
    grew = false;
    for (auto& [pid, stat] : candidates) {
      // A zombie is no new process, but the root's zombie is the root: its exit is the run's.
      if (records_.count(pid) != 0 || (stat.state == 'Z' && pid != root_) || !admit(pid, stat.ppid)) continue;
      if (pid == root_) root_seen_ = true;
      Known& known = known_[pid];
      known.start_time_ticks = stat.start_time_ticks;
      known.comm = stat.comm;
      known.ours = true;
      keep_files(pid, known);
      model::ProcessRecord record;
      record.pid = pid;
      record.ppid = stat.ppid;
      record.first_seen_ms = now_ms;
      if (auto cmdline = fs_.read_pid_file(pid, "cmdline"); cmdline.ok())
        record.command = proc::parse_cmdline(*cmdline);
      if (record.command.empty())
        record.command = pid == root_ && !root_command_.empty() ? root_command_ : std::vector<std::string>{stat.comm};
      records_[pid] = record;
      changes.born.push_back(std::move(record));
      grew = true;
    }
  }
  return unread;
}

void ProcessTreeTracker::note_exit_status(pid_t pid, int wait_status) {
  wait_statuses_[pid] = wait_status;
}

// A command that lives a few milliseconds (`git --version`) can be reaped before the first look
// at /proc: its exit status is all there is, and it is what `run` reports.
void ProcessTreeTracker::record_unseen_root(int64_t now_ms, TreeChanges& changes) {
  auto waited = wait_statuses_.find(root_);
  if (root_seen_ || waited == wait_statuses_.end()) return;
  root_seen_ = true;
  model::ProcessRecord record;
  record.pid = root_;
  record.ppid = ::getpid();
  record.command = root_command_;
  record.first_seen_ms = now_ms;
  changes.born.push_back(record);
  record.exited_ms = now_ms;
  if (WIFEXITED(waited->second)) record.exit_code = WEXITSTATUS(waited->second);
  if (WIFSIGNALED(waited->second)) record.exit_signal = WTERMSIG(waited->second);
  changes.exited.push_back(std::move(record));
}

std::vector<pid_t> ProcessTreeTracker::alive() const {
  std::vector<pid_t> pids;
  pids.reserve(records_.size());
  for (const auto& [pid, record] : records_) pids.push_back(pid);
  return pids;
}

std::vector<model::ProcessRecord> ProcessTreeTracker::alive_records() const {
  std::vector<model::ProcessRecord> records;
  for (const auto& [pid, record] : records_) records.push_back(record);
  return records;
}

std::optional<ProcessTreeTracker::Activity> ProcessTreeTracker::activity(pid_t pid) const {
  auto it = known_.find(pid);
  return it == known_.end() || !it->second.ours ? std::nullopt : it->second.activity;
}

bool ProcessTreeTracker::root_alive() const {
  return records_.count(root_) != 0;
}

}  // namespace memdx::record
