// Writes a recording (`memdx run` / `memdx watch`): metadata, the process tree, samples and the
// tracer's batches, into one SQLite file (layout in store/schema.h).
//
// Durability: writes go into an open transaction that commit_if_due() commits once a second
// (the sampler calls it every tick). The file is in WAL mode with synchronous=NORMAL: a commit
// reaches the OS without an fsync, so a SIGKILL of memdx or of the target loses at most the
// uncommitted last second and the file still opens; only a power loss can lose more.
//
// Not thread-safe: one writer, used from one thread. Every method throws StoreError on failure
// (e.g. "disk full while writing run.memdx"). A moved-from writer may only be destroyed.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "model/recording.h"

namespace memdx::store {

class RecordingWriter {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kCommitInterval{1000};

  // Creates the recording at `path` (mode 0600: it holds command lines and paths) and commits
  // `meta` at once, so that the file is a valid, empty recording as soon as this returns. An
  // existing non-empty file is refused unless `overwrite` is set; a symbolic link, a directory,
  // a device, a FIFO or a socket at `path` is always refused, and never removed.
  static RecordingWriter create(const std::string& path, const model::RecordingMeta& meta, bool overwrite = false);

  RecordingWriter(RecordingWriter&&) noexcept;
  RecordingWriter& operator=(RecordingWriter&&) noexcept;
  RecordingWriter(const RecordingWriter&) = delete;
  RecordingWriter& operator=(const RecordingWriter&) = delete;
  // Closes as close() does, but cannot report errors: call close() to see them.
  ~RecordingWriter();

  // A metadata entry beyond RecordingMeta; a later put of the same key replaces it.
  void put_meta(std::string_view key, std::string_view value);
  void put_meta(std::string_view key, int64_t value);

  // A process of the tree. A pid seen again (reused by a new process) replaces the earlier row.
  void add_process(const model::ProcessRecord& process);
  // Records how a process ended; false when `pid` was never added (nothing is written then).
  [[nodiscard]] bool mark_exited(pid_t pid, int64_t exited_ms, std::optional<int> exit_code,
                                 std::optional<int> exit_signal);

  // Samples of one tick (or more). A second sample of the same (pid, t_ms) replaces the first.
  // Sizes are stored in whole KiB, rounded up (store/schema.h); /proc reports whole KiB anyway.
  void add_samples(std::span<const model::ProcessSample> samples);
  void add_system_sample(const model::SystemSample& sample);

  // An opaque batch of the heap tracer, e.g. kind "heap_events"; read back in the same order.
  void add_trace_chunk(std::string_view kind, pid_t pid, int64_t t_ms, std::span<const std::byte> data);

  // Thins samples older than `older_than_ms` (recording time) so that at most one per pid
  // remains in each `keep_every_ms` bucket (buckets aligned to multiples of keep_every_ms):
  // the one with the highest RSS, the earliest on ties, so RSS peaks survive thinning (peaks of
  // other series, e.g. fds, may not). Newer samples are untouched. Returns the rows deleted.
  // Throws std::invalid_argument when keep_every_ms <= 0.
  int64_t thin_samples(int64_t older_than_ms, int64_t keep_every_ms);

  // The retention policy of long runs, for the sampler to call now and then (once a minute is
  // plenty): full resolution for the last 10 minutes, one sample per second per process up to
  // an hour back, one per 10 s beyond. A 24-hour watch of one process at 200 ms thus keeps
  // 3000 + 3000 + 8280 = ~14,300 rows instead of 432,000. Returns the rows deleted.
  int64_t thin_for_long_run(int64_t now_ms);

  // Commits the open transaction when one is open and at least kCommitInterval has passed
  // since the last commit; true when it committed.
  bool commit_if_due(Clock::time_point now);
  // Commits the open transaction now, if any.
  void commit();
  // Commits, gives free pages back to the file system, folds the WAL into the file and closes
  // it: a finished recording is a single file. Idempotent.
  void close();

  const std::string& path() const;

 private:
  struct Impl;
  explicit RecordingWriter(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace memdx::store
