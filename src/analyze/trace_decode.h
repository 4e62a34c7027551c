// Decoding the heap tracer's streams, from a recording or from chunks in memory: chunks are
// decompressed one at a time, their frames handed to the stream they belong to, and each
// stream's batches decoded into calls on that stream's sink. Memory stays bounded by one chunk
// plus, per stream, one partial batch and the decoder state of its threads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
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
  enum class Kind : uint8_t { kAlloc, kFree, kMmap, kMunmap, kProtect };
  Kind kind = Kind::kAlloc;
  int32_t tid = 0;  // the thread that made it; its events arrive in seq order
  uint64_t seq = 0;
  uint64_t address = 0;
  uint64_t size = 0;       // bytes (alloc), length (mmap, munmap, protect)
  uint32_t stack = 0;      // alloc, mmap
  uint32_t map_flags = 0;  // mmap: wire::MapFlag bits; protect: kMapNoAccess or 0
};

struct TraceMarker {
  uint64_t seq = 0;
  uint64_t monotonic_ns = 0;
  uint64_t rss_bytes = 0;
  uint64_t tracer_bytes = 0;
};

struct TraceModule {
  static constexpr uint64_t kNeverUnloaded = UINT64_MAX;
  uint64_t seq = 0;
  uint64_t load_bias = 0, start = 0, end = 0;
  std::string path;
  // The seq of its unmodule record (set by the profile, not the reader): after the library's
  // destructors, before anything else is loaded at its addresses.
  uint64_t unload_seq = kNeverUnloaded;
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
  // A stack definition, handed over just before the first event of its thread that follows it:
  // `seq` is that event's, the moment the stack was first used (the tracer writes a definition
  // right before the event that needs it), or the thread's latest seq when no event follows.
  // Module records and unmodule records say which code was mapped at that moment.
  virtual void stack(uint32_t id, uint64_t seq, std::span<const uint64_t> frames) = 0;
  virtual void module(const TraceModule& module) = 0;
  virtual void unmodule(uint64_t seq, uint64_t load_bias) = 0;
  virtual void marker(const TraceMarker& marker) = 0;
  virtual void end(const TraceEnd& end) = 0;
  virtual void note(trace::wire::NoteCode code) = 0;
  // One batch of the stream is over: every event, stack or record the batch held has been handed
  // over. Batches are the unit of arrival: the events of any later batch are the only ones that
  // can still precede, in seq order, an event already received.
  virtual void batch_end() {}
  // A sink that returns true gets each thread batch undecoded, through raw_thread_batch (which it
  // decodes later with a ThreadBatchDecoder), instead of its stacks and events.
  virtual bool wants_raw_thread_batches() const { return false; }
  virtual void raw_thread_batch(int32_t /*tid*/, bool /*start*/, std::span<const uint8_t> /*payload*/) {}
  // The stream is over: `clean` when the process closed it, false when the recording ended
  // first (memdx stopped, or the process was still running).
  virtual void closed(bool clean) = 0;
};

// Decodes the events of one thread, batch after batch: a thread's events are delta-coded against
// its previous ones, across batches. Used by the reader for every thread batch, and by a sink that
// takes batches raw to decode them when it needs their events.
class ThreadBatchDecoder {
 public:
  ThreadBatchDecoder(uint32_t stream, int32_t tid);
  ~ThreadBatchDecoder();
  ThreadBatchDecoder(ThreadBatchDecoder&&) noexcept;
  ThreadBatchDecoder& operator=(ThreadBatchDecoder&&) noexcept;

  // Starts a batch; `start` (a kThreadStart batch: a new thread with this id) resets the state,
  // handing the old thread's waiting stack definitions to `stacks` first. The bytes must stay
  // valid while next() reads them.
  void begin(std::span<const uint8_t> payload, bool start, StreamSink& stacks);
  // The next event of the batch, with the stacks defined before it handed to `stacks.stack` (at
  // the event's seq); false at the end of the batch. Throws TraceFormatError on a corrupt batch.
  bool next(TraceEvent& event, StreamSink& stacks);
  // The stream is over: definitions no event followed are handed at the thread's latest seq.
  void finish(StreamSink& stacks);

 private:
  void hand_pending(StreamSink& stacks, uint64_t seq);
  struct State;
  std::unique_ptr<State> state_;
};

struct TraceReadStats {
  uint64_t chunks = 0;
  uint64_t compressed_bytes = 0;  // of the chunks handed over compressed
  uint64_t stream_bytes = 0;
  uint32_t streams = 0;
};

// The most bytes one decompressed chunk may hold. The collector closes a chunk at about 8 MiB;
// the margin is wide, and the bound keeps a corrupt size field from allocating gigabytes.
inline constexpr uint64_t kMaxTraceChunkBytes = uint64_t{64} << 20;

// Decodes heap-trace chunks handed over one at a time, in arrival order, from any source: the
// recording (read_heap_trace), a test, a fuzzer. `sink_for(n)` is called once for stream n (in
// order of first appearance) and must return a sink that outlives the reader's last call.
//
// Every method that reads input throws TraceFormatError (one line, naming the chunk or the
// stream) on input memdx's collector cannot have written; after a throw the reader must only be
// destroyed. Memory stays bounded by one chunk plus, per stream, one partial batch and its
// threads' decoder state. Not thread-safe.
class TraceReader {
 public:
  using SinkFor = std::function<StreamSink&(uint32_t stream)>;

  explicit TraceReader(SinkFor sink_for);
  ~TraceReader();
  TraceReader(const TraceReader&) = delete;
  TraceReader& operator=(const TraceReader&) = delete;

  // One chunk as the recording stores it: a zstd frame. `chunk_id` names it in errors.
  void add_compressed_chunk(std::span<const std::byte> zstd_frame, int64_t chunk_id);
  // One chunk already decompressed: frames of {u32 stream, u32 bytes, bytes} (trace/format/chunk.h).
  void add_chunk(std::span<const std::byte> frames, int64_t chunk_id);
  // No more chunks: every stream not closed by its process is closed(false). Idempotent.
  const TraceReadStats& finish();

  const TraceReadStats& stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Reads every heap-trace chunk of the recording through a TraceReader (see there for
// `sink_for`). `progress(done_bytes, total_bytes)`, which may be null, is called after each
// chunk with the compressed bytes read so far; total_bytes is 0 (unknown): the store has no
// query for the total size of the chunks. Throws TraceFormatError, and StoreError when the
// recording cannot be read.
TraceReadStats read_heap_trace(const store::RecordingReader& recording,
                               const std::function<StreamSink&(uint32_t stream)>& sink_for,
                               const std::function<void(uint64_t, uint64_t)>& progress = {});

}  // namespace memdx::analyze
