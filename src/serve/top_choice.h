// top:N: the N processes with the most PSS, chosen without reading every process's smaps_rollup.
//
// PSS is what a process costs the machine (shared pages divided among their sharers): a hundred
// forked workers that share one 2 GiB model each show 2 GiB of RSS but cost 20 MiB. Reading PSS
// is a page-table walk under the target's mmap lock, though, so the chooser reads as few as it
// can: PSS never exceeds RSS, so it reads the candidates largest RSS first and stops at the first
// whose RSS cannot beat the N-th PSS found. It reads within a time budget per choice, remembers
// each PSS for a while (and a costly read for longer) or until the process's RSS moves by more
// than an eighth, and ranks a process it could not read yet by its RSS, an upper bound. The
// processes it chose keep their place until another has an eighth more, so that series do not
// flap between two of nearly equal size.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <unordered_map>
#include <vector>

namespace memdx::serve {

struct TopCandidate {
  pid_t pid = 0;
  uint64_t start_ticks = 0;  // /proc/PID/stat starttime: a reused pid is another process
  uint64_t rss_bytes = 0;
  // A PSS the caller read itself not long ago (the monitor's own sample of a process it serves).
  std::optional<uint64_t> known_pss_bytes;
};

struct TopChoiceOptions {
  // smaps_rollup reads per choice take at most about this long; the rest wait for the next one.
  std::chrono::microseconds read_budget{20000};
  // A PSS read for the choice is used this long before it is read again.
  std::chrono::milliseconds refresh{60000};
  // And not read again sooner than this many times as long as its last read took (a 4.5 s read
  // of a 200 GB process waits 7.5 minutes at 100), as the sampler does.
  double cost_factor = 100;
};

class TopByPss {
 public:
  // The PSS of a process in bytes; nullopt when it cannot be read (gone, or not permitted).
  using ReadPss = std::function<std::optional<uint64_t>(pid_t)>;

  explicit TopByPss(TopChoiceOptions options = {}) : options_(options) {}

  // The pids of the `count` candidates with the most PSS, largest first; one chosen last time
  // stays until another has an eighth more. `candidates` is every process that may be chosen:
  // what is remembered of any other is dropped.
  std::vector<pid_t> choose(std::vector<TopCandidate> candidates, size_t count, int64_t now_ms,
                            const ReadPss& read_pss);

  // smaps_rollup reads the last choice made, and candidates it ranked by RSS for want of time.
  size_t last_reads() const { return last_reads_; }
  size_t last_unread() const { return last_unread_; }

 private:
  struct Known {
    uint64_t start_ticks = 0;
    uint64_t rss_bytes = 0;             // at the reading
    std::optional<uint64_t> pss_bytes;  // nullopt: the read failed; ranked by RSS
    int64_t read_ms = 0;
    int64_t next_read_ms = 0;
  };
  // A reading's PSS moved by the RSS the process gained or lost since, within [0, RSS].
  static std::optional<uint64_t> estimate(const Known& known, uint64_t rss_bytes);
  TopChoiceOptions options_;
  std::unordered_map<pid_t, Known> known_;
  std::unordered_map<pid_t, uint64_t> chosen_;  // by the last choice: pid -> its start ticks
  size_t last_reads_ = 0;
  size_t last_unread_ = 0;
};

}  // namespace memdx::serve
