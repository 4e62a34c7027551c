// The collector in memdx: accepts the traced processes' connections, reads their batches as
// they come, and turns them into zstd-compressed chunks for the recording (trace/format/chunk.h).
// Compression and storage happen here, never in the target.
//
// Thread-safety: one background thread reads and compresses; take_chunks() and stats() may be
// called from any one other thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace memdx::record {

struct StoredTraceChunk {
  int64_t t_ms = 0;  // since the collector started
  std::vector<std::byte> data;  // zstd
};

struct CollectorStats {
  uint64_t streams = 0;          // connections accepted (process images traced)
  uint64_t bytes_received = 0;   // raw stream bytes
  uint64_t bytes_compressed = 0; // as stored
};

class TraceCollector {
 public:
  // Listens on a new abstract UNIX socket and starts the reading thread. Throws
  // std::runtime_error with a one-line reason when the socket cannot be made.
  static std::unique_ptr<TraceCollector> start();
  ~TraceCollector();
  TraceCollector(const TraceCollector&) = delete;
  TraceCollector& operator=(const TraceCollector&) = delete;

  // The socket name to put in MEMDX_TRACE_SOCKET (abstract namespace, without the leading 0).
  const std::string& socket_name() const;

  // Chunks compressed since the last call, oldest first.
  std::vector<StoredTraceChunk> take_chunks();

  // The traced tree has ended: waits until every connection has closed or `grace` has passed
  // without any data arriving, stops the thread and compresses what is left. Idempotent.
  void finish(std::chrono::milliseconds grace);

  CollectorStats stats() const;

 private:
  struct State;
  explicit TraceCollector(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace memdx::record
