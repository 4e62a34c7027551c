// Reads a recording written by RecordingWriter (layout in store/schema.h), read-only.
//
// Opening works on a file whose writer is still running (it sees what has been committed) or
// was SIGKILLed (SQLite recovers the committed part of the WAL). Each call reads one consistent
// snapshot. Not thread-safe; every method throws StoreError on failure.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/recording.h"

namespace memdx::store {

class Statement;

// One batch of the heap tracer, as passed to RecordingWriter::add_trace_chunk.
struct TraceChunk {
  int64_t id = 0;  // arrival order
  std::string kind;
  pid_t pid = 0;
  int64_t t_ms = 0;
  std::vector<std::byte> data;
};

// Streams trace chunks one at a time, in arrival order. May outlive its reader.
class TraceChunkCursor {
 public:
  TraceChunkCursor(TraceChunkCursor&&) noexcept;
  TraceChunkCursor& operator=(TraceChunkCursor&&) noexcept;
  TraceChunkCursor(const TraceChunkCursor&) = delete;
  TraceChunkCursor& operator=(const TraceChunkCursor&) = delete;
  ~TraceChunkCursor();

  // The next chunk; nullopt at the end.
  std::optional<TraceChunk> next();
  // The same into `chunk`, reusing its buffer: a reader of many MiB-sized chunks then allocates
  // (and faults in) its buffer once. False at the end.
  bool next_into(TraceChunk& chunk);

 private:
  friend class RecordingReader;
  explicit TraceChunkCursor(std::unique_ptr<Statement> stmt);

  std::unique_ptr<Statement> stmt_;
};

class RecordingReader {
 public:
  // Throws StoreError: "cannot open recording X: no such file", "... not a memdx recording",
  // "recording X was written by a newer memdx (schema N, this memdx reads up to M)".
  static RecordingReader open(const std::string& path);

  RecordingReader(RecordingReader&&) noexcept;
  RecordingReader& operator=(RecordingReader&&) noexcept;
  RecordingReader(const RecordingReader&) = delete;
  RecordingReader& operator=(const RecordingReader&) = delete;
  ~RecordingReader();

  int schema_version() const;
  model::RecordingMeta meta() const;
  // Any entry of the meta table (including those put_meta added), as text.
  std::optional<std::string> meta_value(std::string_view key) const;

  // Ordered by first_seen_ms, then pid.
  std::vector<model::ProcessRecord> processes() const;

  // Samples of one process, ordered by t_ms.
  std::vector<model::ProcessSample> samples(pid_t pid) const;
  // Every sample, ordered by pid then t_ms, one at a time: memory stays flat on long recordings.
  void for_each_sample(const std::function<void(const model::ProcessSample&)>& visit) const;
  int64_t sample_count() const;

  // Ordered by t_ms.
  std::vector<model::SystemSample> system_samples() const;

  TraceChunkCursor trace_chunks() const;
  // The stored (compressed) size of every trace chunk, for progress while they are read.
  uint64_t trace_chunk_bytes() const;

  const std::string& path() const;

 private:
  struct Impl;
  explicit RecordingReader(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace memdx::store
