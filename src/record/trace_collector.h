// The collector in memdx: accepts the traced processes' connections, reads their batches as
// they come, and turns them into zstd-compressed chunks for the recording (trace/format/chunk.h).
// Compression and storage happen here, never in the target.
//
// It admits only the tracer memdx injected. It listens on a socket in a private directory (mode
// 0700, so no other user can connect at all) and, for every connection, checks the peer's
// credentials (SO_PEERCRED: this process's user, and a process of the traced tree: memdx is its
// ancestor) and the run's secret, which must be the connection's first bytes (wire::StreamAuth).
// A connection that fails any check is closed before a byte of it is stored, and noted.
//
// Thread-safety: one background thread reads and compresses; take_chunks(), stats() and refused()
// may be called from any one other thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace memdx::record {

struct StoredTraceChunk {
  int64_t t_ms = 0;             // since the collector started
  std::vector<std::byte> data;  // zstd
};

struct CollectorStats {
  uint64_t streams = 0;           // connections admitted (process images traced)
  uint64_t bytes_received = 0;    // raw stream bytes
  uint64_t bytes_compressed = 0;  // as stored
  uint64_t refused = 0;           // connections that failed a check
  uint64_t dropped = 0;           // connections closed unread: memdx was out of file descriptors
};

// Why a connection was refused.
enum class RefusalReason { kOtherUser, kOutsideTree, kWrongSecret, kNoCredentials };
std::string_view refusal_text(RefusalReason reason);

struct RefusedPeer {
  pid_t pid = 0;
  uid_t uid = 0;
  RefusalReason reason = RefusalReason::kWrongSecret;
};

// What the tracer needs to reach the collector (the MEMDX_TRACE_* environment).
struct CollectorAddress {
  std::string socket_path;
  std::string key_hex;  // wire::kKeyBytes random bytes, hex
  pid_t collector_pid = 0;
};

class TraceCollector {
 public:
  // Makes the private directory and the socket, and starts the reading thread. Throws
  // std::runtime_error with a one-line reason when that fails.
  static std::unique_ptr<TraceCollector> start();
  // Stops the thread and removes the socket and its directory.
  ~TraceCollector();
  TraceCollector(const TraceCollector&) = delete;
  TraceCollector& operator=(const TraceCollector&) = delete;

  const CollectorAddress& address() const;

  // Chunks compressed since the last call, oldest first.
  std::vector<StoredTraceChunk> take_chunks();

  // The traced tree has ended: waits until every connection has closed or `grace` has passed
  // without any data arriving, stops the thread and compresses what is left. Idempotent.
  void finish(std::chrono::milliseconds grace);

  CollectorStats stats() const;
  // The first refused connections (at most kRefusalsKept), oldest first.
  std::vector<RefusedPeer> refused() const;
  static constexpr size_t kRefusalsKept = 16;

 private:
  struct State;
  explicit TraceCollector(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace memdx::record
