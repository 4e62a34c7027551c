// The live view of watch on a terminal: elapsed time, total PSS, the busiest processes with their
// fds and threads, and a trend arrow per series. Redrawn at most twice a second on stderr, and
// erased before the final summary; never drawn on a terminal the recorded process writes to.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <string>

#include "record/session.h"

namespace memdx::cli {

class LiveView {
 public:
  LiveView() = default;  // disabled
  // Enabled when stderr is a terminal that `root` cannot write to: the view redraws its lines,
  // and a program writing to the same terminal would have its own lines drawn over (a program
  // started by `memdx run` inherits memdx's terminal, so there the view stays off).
  explicit LiveView(pid_t root);
  bool enabled() const { return enabled_; }
  void update(const record::TickStatus& status);
  void clear();  // erases what was drawn

 private:
  struct History {
    std::deque<std::pair<int64_t, uint64_t>> rss;  // (t_ms, rss) over the last ~10 s
    uint64_t pss_bytes = 0;
  };
  std::string render(const record::TickStatus& status);

  bool enabled_ = false;
  int lines_drawn_ = 0;
  std::chrono::steady_clock::time_point last_draw_{};
  std::map<pid_t, History> history_;
};

}  // namespace memdx::cli
