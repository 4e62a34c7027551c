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
#include "proc/procfs.h"

namespace memdx::record {

struct TreeChanges {
  std::vector<model::ProcessRecord> born;   // new processes, with ppid and command line
  std::vector<model::ProcessRecord> exited;  // with exit time and, when known, status
  std::vector<model::ProcessRecord> exec_changed;  // same pid, new command line after exec
};

class ProcessTreeTracker {
 public:
  // `anchors` are extra parents whose children belong to the tree: memdx itself when it is a
  // child subreaper, so orphaned grandchildren reparented to it stay followed.
  ProcessTreeTracker(const proc::ProcFs& fs, pid_t root, std::set<pid_t> anchors = {});

  // One pass over /proc: finds new descendants and processes that exited. Cheap on a quiet
  // system: a pid is read once, then remembered as "ours" or "not ours" with its start time.
  TreeChanges refresh(int64_t now_ms);

  // Records an exit status learned from waitpid() (the root, reaped orphans).
  void note_exit_status(pid_t pid, int wait_status);

  std::vector<pid_t> alive() const;
  bool root_alive() const;
  pid_t root() const { return root_; }

 private:
  struct Known {
    uint64_t start_time_ticks = 0;
    std::string comm;
    bool ours = false;
  };
  void find_exits(const std::set<pid_t>& present, int64_t now_ms, TreeChanges& changes);
  void find_births(const std::vector<pid_t>& listed, int64_t now_ms, TreeChanges& changes);
  bool admit(pid_t pid, pid_t ppid) const;

  const proc::ProcFs& fs_;
  pid_t root_;
  std::set<pid_t> anchors_;
  std::map<pid_t, Known> known_;
  std::map<pid_t, model::ProcessRecord> records_;  // ours, alive
  std::map<pid_t, int> wait_statuses_;
  std::set<pid_t> previously_listed_;
};

}  // namespace memdx::record
