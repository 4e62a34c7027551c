// The recording loop of `memdx run` and `memdx watch`: follow the tree, sample it each tick,
// store the samples, and stop cleanly when the root exits, the duration passes, or the user
// interrupts.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "model/recording.h"
#include "proc/procfs.h"
#include "record/sampler.h"
#include "store/recording_writer.h"

namespace memdx::record {

// What the live view shows after each tick.
struct TickStatus {
  int64_t t_ms = 0;
  const std::vector<model::ProcessSample>* samples = nullptr;  // this tick's
  size_t processes_alive = 0;
  size_t processes_seen = 0;
};

struct SessionOptions {
  int64_t interval_ms = 200;
  std::optional<int64_t> duration_ms;  // watch --duration
  // run: memdx is the root's parent and a child subreaper; it reaps and forwards signals.
  bool root_is_child = false;
  std::vector<std::string> root_command;  // run: recorded even if the root ends before it is seen
  // After the root exits: go on recording until every process of the tree has ended (daemons
  // the root started), instead of stopping with the root.
  bool follow_tree = false;
  // The root has exited while these processes of its tree still run (called once).
  std::function<void(const std::vector<model::ProcessRecord>&)> on_root_exit;
  SamplerOptions sampler;
  std::string cgroup_directory;  // of the root, for per-tick memory.current
  std::function<void(const TickStatus&)> on_tick;
  // false: follow the tree (births, exits, exit codes) without sampling its memory, as
  // `memdx trace` does to stay out of the target's way.
  bool sample_memory = true;
  // Called each tick before the commit, to store what other sources gathered (the heap
  // tracer's chunks).
  std::function<void(store::RecordingWriter&)> on_store;
  // Writing the recording failed (disk full): called once with the one-line reason. The session
  // goes on following the tree without writing, calling on_store_discard each tick instead of
  // on_store so that other sources can drop what they gathered.
  std::function<void(const std::string&)> on_store_error;
  std::function<void()> on_store_discard;
  // Waits at most `timeout_ms` for a reason to end the session; returns true when it must end
  // (libmemdx's Recording::stop()). Unset: the session waits for the signals
  // block_session_signals() blocked (Ctrl-C, SIGTERM, SIGHUP, a child's exit), as the commands do.
  // A library must not take its host program's signals, so it sets this.
  std::function<bool(int64_t timeout_ms)> wait_for_stop;
  // Raise the soft limit of open files to the hard one (a tree of thousands needs more than
  // 1024). A library leaves its host's limits alone.
  bool raise_fd_limit = true;
};

struct SessionResult {
  enum class End { kRootExited, kTreeEnded, kDurationReached, kInterrupted };
  End end = End::kRootExited;
  // Processes of the tree still running when the session ended (daemons left by the root).
  std::vector<model::ProcessRecord> still_running;
  std::optional<int> root_wait_status;  // run: from waitpid
  int64_t duration_ms = 0;
  int64_t ticks = 0;
  // Why writing the recording stopped, when it did: the recording holds what was committed before.
  std::optional<std::string> store_error;
};

// What every recording of the tree of `root`, sampled each `interval_ms`, starts from: PSS reads
// may take 1% of each interval (at least 1 ms), so memdx stays light at any rate; the root's
// memory cgroup is sampled each tick.
SessionOptions session_options_for(const proc::ProcFs& fs, pid_t root, int64_t interval_ms);

// Blocks SIGINT, SIGTERM, SIGHUP and SIGCHLD in the calling thread so that the session can wait
// for them synchronously. Call before starting the target (which must get an empty mask).
void block_session_signals();

SessionResult run_session(const proc::ProcFs& fs, store::RecordingWriter& writer, pid_t root,
                          const SessionOptions& options);

}  // namespace memdx::record
