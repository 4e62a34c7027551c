// Follows a process tree over time: the root, every descendant as it appears (fork, exec,
// daemonizing grandchildren reparented to a subreaper), and each one's exit.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "model/recording.h"
#include "proc/kept_file.h"
#include "proc/process_files.h"
#include "proc/procfs.h"

namespace memdx::record {

struct TreeChanges {
  std::vector<model::ProcessRecord> born;          // new processes, with ppid and command line
  std::vector<model::ProcessRecord> exited;        // with exit time and, when known, status
  std::vector<model::ProcessRecord> exec_changed;  // same pid, new command line after exec
};

class ProcessTreeTracker {
 public:
  // `anchors` are extra parents whose children belong to the tree: memdx itself when it is a
  // child subreaper, so orphaned grandchildren reparented to it stay followed. Make it after
  // raising RLIMIT_NOFILE: it keeps files open within a share of the limit.
  ProcessTreeTracker(const proc::ProcFs& fs, pid_t root, std::set<pid_t> anchors = {});

  // One pass over /proc: finds new descendants and processes that exited. Cheap on a quiet
  // system: a pid is read once, then remembered as "ours" or "not ours" with its start time.
  TreeChanges refresh(int64_t now_ms);

  // Records an exit status learned from waitpid() (the root, reaped orphans).
  void note_exit_status(pid_t pid, int wait_status);
  // The root's command line, for a root that exits (and is reaped) before any refresh saw it:
  // it is then recorded as born and exited at once, with its exit status, never left out.
  void set_root_command(std::vector<std::string> command) { root_command_ = std::move(command); }

  std::vector<pid_t> alive() const;
  std::vector<model::ProcessRecord> alive_records() const;
  // What `pid` did, as read on the last refresh (every alive process is read on each one), so
  // the sampler can tell an idle process without reading it again; nullopt when unknown.
  struct Activity {
    uint64_t cpu_ns = 0;  // /proc/PID/schedstat: changes whenever the process ran at all
    uint64_t faults = 0;
    uint64_t vsize_bytes = 0;
    uint64_t rss_pages = 0;
    uint32_t threads = 0;
    bool operator==(const Activity&) const = default;
  };
  std::optional<Activity> activity(pid_t pid) const;
  bool root_alive() const;
  pid_t root() const { return root_; }

 private:
  struct Known {
    uint64_t start_time_ticks = 0;
    std::string comm;
    bool ours = false;
    // Kept open while the process is ours: each refresh re-reads them with one pread.
    std::optional<proc::KeptFile> stat_file;
    std::optional<proc::KeptFile> schedstat_file;
    std::optional<Activity> activity;
    std::optional<proc::Stat> last_stat;
    int64_t stat_read_ms = 0;
  };
  // What one look at a followed process found. kUnreadable (out of file descriptors, say) is
  // not an exit: only a process gone from /proc, reaped, replaced or a zombie has exited.
  enum class Probe { kAlive, kGone, kUnreadable };
  Probe read_stat(pid_t pid, Known& known, int64_t now_ms, std::optional<proc::Stat>& stat);
  Probe read_cpu_ns(Known& known, std::optional<uint64_t>& cpu_ns);
  void find_exits(const std::set<pid_t>& present, int64_t now_ms, TreeChanges& changes);
  // Returns the listed pids that could not be read, to be read again on the next refresh.
  std::set<pid_t> find_births(const std::vector<pid_t>& listed, int64_t now_ms, TreeChanges& changes);
  bool admit(pid_t pid, pid_t ppid) const;
  void record_unseen_root(int64_t now_ms, TreeChanges& changes);
  void keep_files(pid_t pid, Known& known);
  void drop_files(Known& known);

  const proc::ProcFs& fs_;
  pid_t root_;
  std::set<pid_t> anchors_;
  std::map<pid_t, Known> known_;
  std::map<pid_t, model::ProcessRecord> records_;  // ours, alive
  std::map<pid_t, int> wait_statuses_;
  std::set<pid_t> previously_listed_;
  bool root_seen_ = false;
  std::vector<std::string> root_command_;
  std::string buffer_;  // reused by every read of a kept file
  // Kept files cost a descriptor each while the process lives; past this many (a share of
  // RLIMIT_NOFILE, read when the tracker is made), processes are read by path on each refresh.
  size_t kept_files_ = 0;
  size_t kept_file_budget_ = 0;
};

}  // namespace memdx::record
