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
  SamplerOptions sampler;
  std::string cgroup_directory;  // of the root, for per-tick memory.current
  std::function<void(const TickStatus&)> on_tick;
  // false: follow the tree (births, exits, exit codes) without sampling its memory, as
  // `memdx trace` does to stay out of the target's way.
  bool sample_memory = true;
  // Called each tick before the commit, to store what other sources gathered (the heap
  // tracer's chunks).
  std::function<void(store::RecordingWriter&)> on_store;
};

struct SessionResult {
  enum class End { kRootExited, kDurationReached, kInterrupted };
  End end = End::kRootExited;
  std::optional<int> root_wait_status;  // run: from waitpid
  int64_t duration_ms = 0;
  int64_t ticks = 0;
};

// Blocks SIGINT, SIGTERM, SIGHUP and SIGCHLD in the calling thread so that the session can wait
// for them synchronously. Call before starting the target (which must get an empty mask).
void block_session_signals();

SessionResult run_session(const proc::ProcFs& fs, store::RecordingWriter& writer, pid_t root,
                          const SessionOptions& options);

}  // namespace memdx::record
