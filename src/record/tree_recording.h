// The recording pipeline of run, trace and watch, and of libmemdx: create the recording, start
// the heap tracer's collector when asked, start (or adopt) the root, record its tree until the
// session ends, store the trace and close the file. What a user sees of it as it goes (a live
// view, lines on stderr) is the caller's, through a TreeRecordingObserver: this module prints
// nothing and takes no signal of its own accord.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "model/recording.h"
#include "record/session.h"
#include "record/trace_collector.h"

namespace memdx::record {

// The heap tracer's settings, passed to it in its environment.
struct TraceSettings {
  uint64_t sample_bytes = 0;  // 0: every allocation
  uint32_t max_depth = 64;
};

// `base` ("NAME=value" entries) with LD_PRELOAD naming `library` first (the libraries it named
// are kept after it), where to reach the collector and the tracer's settings; MEMDX_TRACE_*
// entries of `base` are replaced, never passed on twice.
std::vector<std::string> traced_environment(const std::vector<std::string>& base, const std::string& library,
                                            const CollectorAddress& collector, const TraceSettings& settings);

// The calling process's environment as "NAME=value" entries.
std::vector<std::string> current_environment();

struct TreeRecordingRequest {
  std::string out_path;
  model::RecordingMeta meta;
  std::optional<int64_t> duration_ms;
  bool root_is_child = false;  // memdx started the root: it reaps it and forwards signals to it
  bool follow_tree = false;    // record until every process of the tree has ended, not the root only
  bool sample_memory = true;   // false: follow the tree only (memdx trace)
  // Inject the heap tracer: start_root then gets the environment that carries it.
  std::optional<std::string> tracer_library;
  TraceSettings trace;
  // The environment start_root gets without a tracer, and that the tracer's is built on.
  std::vector<std::string> environment;
};

// What the collector received, for the closing lines and the recording's meta.
struct TraceReceived {
  uint64_t streams = 0;
  uint64_t bytes_received = 0;
  uint64_t bytes_stored = 0;
  std::vector<RefusedPeer> refused;  // the first few connections the collector refused
  uint64_t refused_count = 0;
  uint64_t dropped = 0;  // not traced: out of file descriptors
};

struct TreeRecordingOutcome {
  SessionResult session;
  std::optional<TraceReceived> trace;  // with a tracer
};

// What the caller sees of a recording while it runs; every member may be left empty.
struct TreeRecordingObserver {
  // Just before start_root, and once the root's pid is known.
  std::function<void()> before_root_starts;
  std::function<void(pid_t root)> root_started;
  std::function<void(const TickStatus&)> on_tick;
  // Writing stopped (disk full): the one-line reason, once. The recording keeps what was
  // committed; the tree is still followed to its end.
  std::function<void(const std::string& reason)> on_store_error;
  // The root has exited while these processes of its tree run (follow_tree: still recorded).
  std::function<void(const std::vector<model::ProcessRecord>& running)> on_root_exit;
  // The session has ended, before the trace is drained (up to 2 s) and the file closed.
  std::function<void(const SessionResult&)> session_ended;
  // As SessionOptions::wait_for_stop: a library sets it, so that the session never takes its
  // host's signals (which are then left unblocked) nor raises its file limit.
  std::function<bool(int64_t timeout_ms)> wait_for_stop;
};

// Records the tree rooted at start_root(environment)'s pid. The recording is created first, so a
// bad path fails before anything starts. When start_root returns a negative pid the empty
// recording is removed and nullopt returned. Throws store::StoreError when the recording cannot
// be created, and std::runtime_error when the collector cannot start; a write failure later ends
// the writing only (outcome.session.store_error).
std::optional<TreeRecordingOutcome> record_tree(
    const proc::ProcFs& fs, const TreeRecordingRequest& request, const TreeRecordingObserver& observer,
    const std::function<pid_t(const std::vector<std::string>& environment)>& start_root);

}  // namespace memdx::record
