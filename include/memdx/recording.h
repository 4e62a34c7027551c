// Recording a process tree's memory from a program, and the verdict on a recording: what
// `memdx watch` and `memdx report` do, as calls.
//
//   memdx::Recording recording = memdx::Recording::start(pid, "server.memdx");
//   ... the program works ...
//   recording.stop();
//   memdx::Verdict verdict = memdx::analyze_recording(recording.path());
//   if (memdx::has_leak(verdict)) ...
//
// The recording is the same SQLite file `memdx watch` writes: `memdx report server.memdx` reads it,
// with the text, the HTML page and the call sites.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "memdx/export.h"
#include "memdx/verdict.h"

namespace memdx {

struct RecordOptions {
  int64_t interval_ms = 200;           // between samples; at least 10
  std::optional<int64_t> duration_ms;  // ends by itself after this long; unset: at stop() or when the tree ends
};

// One recording in progress: samples the process tree of `pid` (the process and every process
// it starts, as they come and go) on a thread of its own until stop(), the duration, or the end
// of the whole tree. It reads /proc only: the processes are not stopped, traced or signalled, and
// the calling program's signals and children are left alone (nothing is reaped). Not copyable;
// movable. The destructor stops it. One Recording may be used from one thread at a time.
class MEMDX_API Recording {
 public:
  // Creates the file at `path` (never overwrites one: kAlreadyExists) and starts sampling.
  // Throws memdx::Error: kNoSuchProcess, kInvalidArgument, kAlreadyExists, kPermissionDenied,
  // kSystem.
  static Recording start(pid_t pid, const std::string& path, const RecordOptions& options = {});

  Recording(Recording&&) noexcept;
  Recording& operator=(Recording&&) noexcept;
  ~Recording();

  // Ends the recording and closes its file (waits at most one sample). Idempotent. Throws
  // memdx::Error (kSystem) when writing failed on the way (disk full): the file keeps what was
  // written before.
  void stop();

  // Whether it ended by itself: the tree ended or the duration passed (stop() is still needed to
  // learn whether writing failed).
  bool finished() const;

  const std::string& path() const;

 private:
  struct State;
  explicit Recording(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// The verdict on a recording (of Recording, `memdx run`, `memdx watch` or `memdx trace`): the
// findings, fastest leak first, every hypothesis checked, and with the heap tracer the call sites
// holding memory. Reads the file; symbolizes from the programs' files on this machine (their own
// debug information and the distribution's debug packages). libdw also asks the debuginfod
// servers DEBUGINFOD_URLS names, if the calling process has it set: unset it first to keep the
// analysis offline (the memdx command does; a library leaves its host's environment alone).
// Throws memdx::Error: kNotFound, kPermissionDenied, kBadRecording, kSystem.
MEMDX_API Verdict analyze_recording(const std::string& path);

}  // namespace memdx
