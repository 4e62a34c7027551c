// Decoding the heap tracer's streams out of a recording: chunks are decompressed one at a
// time, their frames handed to the stream they belong to, and each stream's batches decoded
// into calls on that stream's sink. Memory stays bounded by one chunk plus, per stream, one
// partial batch and the decoder state of its threads.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include "store/recording_reader.h"
#include "trace/format/wire.h"

namespace memdx::analyze {

// A trace that cannot be read: truncated, corrupted, or not memdx's. The message is one line.
class TraceFormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct TraceEvent {
  enum class Kind : uint8_t { kAlloc, kFree, kMmap, kMunmap };
  Kind kind = Kind::kAlloc;
  int32_t tid = 0;  // the thread that made it; its events arrive in seq order
  uint64_t seq = 0;
  uint64_t address = 0;
  uint64_t size = 0;       // bytes (alloc), length (mmap, munmap)
  uint32_t stack = 0;      // alloc, mmap
  uint32_t map_flags = 0;  // mmap: wire::MapFlag bits
};

struct TraceMarker {
  uint64_t seq = 0;
  uint64_t monotonic_ns = 0;
  uint64_t rss_bytes = 0;
  uint64_t tracer_bytes = 0;
};

struct TraceModule {
  uint64_t seq = 0;
  uint64_t load_bias = 0, start = 0, end = 0;
  std::string path;
};

struct TraceEnd {
  uint64_t seq = 0;
  uint64_t monotonic_ns = 0;
  trace::wire::EndReason reason = trace::wire::EndReason::kExit;
  int64_t status = 0;
};

// What one stream (one traced process image) produces, in stream order. Events of different
// threads arrive in batches; only their seq orders them.
class StreamSink {
 public:
  virtual ~StreamSink() = default;
  virtual void hello(const trace::wire::StreamHello& hello) = 0;
  virtual void event(const TraceEvent& event) = 0;
  virtual void stack(uint32_t id, std::span<const uint64_t> frames) = 0;
  virtual void module(const TraceModule& module) = 0;
  virtual void unmodule(uint64_t seq, uint64_t load_bias) = 0;
  virtual void marker(const TraceMarker& marker) = 0;
  virtual void end(const TraceEnd& end) = 0;
  virtual void note(trace::wire::NoteCode code) = 0;
  // The stream is over: `clean` when the process closed it, false when the recording ended
  // first (memdx stopped, or the process was still running).
  virtual void closed(bool clean) = 0;
};

struct TraceReadStats {
  uint64_t chunks = 0;
  uint64_t compressed_bytes = 0;
  uint64_t stream_bytes = 0;
  uint32_t streams = 0;
};

// Reads every heap-trace chunk of the recording. `sink_for(n)` is called once for stream n (in
// order of first appearance) and must return a sink that lives until the end of the call.
// `progress(done_bytes, total_bytes)` may be null. Throws TraceFormatError.
TraceReadStats read_heap_trace(const store::RecordingReader& recording,
                               const std::function<StreamSink&(uint32_t stream)>& sink_for,
                               const std::function<void(uint64_t, uint64_t)>& progress = {});

}  // namespace memdx::analyze
