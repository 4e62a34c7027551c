#include "analyze/trace_decode.h"

#include <zstd.h>

#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <span>
#include <stdexcept>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "trace/format/chunk.h"

namespace memdx::analyze {
namespace wire = trace::wire;

namespace {

// Reads the fields of one record; every failure is the same corrupt-stream error.
class RecordReader {
 public:
  RecordReader(const uint8_t* begin, const uint8_t* end, uint32_t stream) : at_(begin), end_(end), stream_(stream) {}
  bool done() const { return at_ == end_; }
  const uint8_t* position() const { return at_; }
  uint8_t tag() {
    need(1);
    return *at_++;
  }
  uint64_t u() {
    uint64_t value = 0;
    if (!wire::get_u64(&at_, end_, &value)) fail("a number runs past its batch");
    return value;
  }
  int64_t s() {
    int64_t value = 0;
    if (!wire::get_s64(&at_, end_, &value)) fail("a number runs past its batch");
    return value;
  }
  std::string text(uint64_t bytes) {
    need(bytes);
    std::string value(reinterpret_cast<const char*>(at_), bytes);
    at_ += bytes;
    return value;
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw TraceFormatError(fmt::format("heap trace stream {} is corrupt: {}", stream_, what));
  }

 private:
  void need(uint64_t bytes) {
    if (static_cast<uint64_t>(end_ - at_) < bytes) fail("a record runs past its batch");
  }
  const uint8_t* at_;
  const uint8_t* end_;
  uint32_t stream_;
};

class StreamDecoder {
 public:
  StreamDecoder(uint32_t number, StreamSink& sink) : number_(number), sink_(sink) {}

  void feed(const std::byte* data, size_t bytes) {
    if (closed_) throw TraceFormatError(fmt::format("heap trace stream {} continues after its end", number_));
    pending_.insert(pending_.end(), reinterpret_cast<const uint8_t*>(data),
                    reinterpret_cast<const uint8_t*>(data) + bytes);
    parse();
  }

  // The process closed the stream: only once, since the collector numbers every connection anew.
  void close_by_process() {
    if (closed_) throw TraceFormatError(fmt::format("heap trace stream {} ends twice", number_));
    close(true);
  }

  void close(bool clean) {
    if (closed_) return;
    closed_ = true;
    for (auto& [tid, thread] : threads_) thread.finish(sink_);
    // A batch cut off by the end of the stream is dropped: a process killed mid-write.
    sink_.closed(clean && pending_.size() == consumed_);
  }

 private:
  void parse();
  void decode_hello();
  void decode_thread_batch(int32_t tid, const uint8_t* begin, const uint8_t* end, bool start);
  void decode_process_batch(const uint8_t* begin, const uint8_t* end);

  uint32_t number_;
  StreamSink& sink_;
  std::vector<uint8_t> pending_;
  size_t consumed_ = 0;
  bool have_hello_ = false;
  bool closed_ = false;
  std::unordered_map<int32_t, ThreadBatchDecoder> threads_;
};

void StreamDecoder::parse() {
  for (;;) {
    size_t available = pending_.size() - consumed_;
    const uint8_t* at = pending_.data() + consumed_;
    if (!have_hello_) {
      if (available < sizeof(wire::StreamHello)) break;
      decode_hello();
      continue;
    }
    if (available < sizeof(wire::BatchHeader)) break;
    wire::BatchHeader header{};
    std::memcpy(&header, at, sizeof(header));
    if (header.magic != wire::kBatchMagic || header.payload_bytes > wire::kMaxBatchPayloadBytes) {
      throw TraceFormatError(fmt::format("heap trace stream {} is corrupt: bad batch header", number_));
    }
    if (available < sizeof(header) + header.payload_bytes) break;
    const uint8_t* payload = at + sizeof(header);
    const uint8_t* payload_end = payload + header.payload_bytes;
    auto kind = static_cast<wire::BatchKind>(header.kind);
    if (kind == wire::BatchKind::kThread || kind == wire::BatchKind::kThreadStart) {
      decode_thread_batch(header.tid, payload, payload_end, kind == wire::BatchKind::kThreadStart);
    } else if (kind == wire::BatchKind::kProcess) {
      decode_process_batch(payload, payload_end);
    } else {
      throw TraceFormatError(
          fmt::format("heap trace stream {} is corrupt: unknown batch kind {}", number_, header.kind));
    }
    consumed_ += sizeof(header) + header.payload_bytes;
    sink_.batch_end();
  }
  if (consumed_ > (1u << 20) && consumed_ * 2 > pending_.size()) {
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(consumed_));
    consumed_ = 0;
  }
}

void StreamDecoder::decode_hello() {
  wire::StreamHello hello{};
  std::memcpy(&hello, pending_.data() + consumed_, sizeof(hello));
  if (std::memcmp(hello.magic, wire::kStreamMagic, sizeof(hello.magic)) != 0) {
    throw TraceFormatError(fmt::format("heap trace stream {} does not start with memdx's tracer header", number_));
  }
  if (hello.version < wire::kOldestReadableVersion || hello.version > wire::kVersion ||
      hello.hello_bytes != sizeof(hello)) {
    throw TraceFormatError(fmt::format("heap trace stream {} has tracer format version {}, this memdx reads {}",
                                       number_, hello.version, wire::kVersion));
  }
  consumed_ += sizeof(hello);
  have_hello_ = true;
  sink_.hello(hello);
}

void StreamDecoder::decode_thread_batch(int32_t tid, const uint8_t* begin, const uint8_t* end, bool start) {
  std::span<const uint8_t> payload(begin, end);
  if (sink_.wants_raw_thread_batches()) {
    sink_.raw_thread_batch(tid, start, payload);
    return;
  }
  auto [slot, fresh] = threads_.try_emplace(tid, number_, tid);
  ThreadBatchDecoder& thread = slot->second;
  thread.begin(payload, start, sink_);
  TraceEvent event;
  while (thread.next(event, sink_)) sink_.event(event);
}

void StreamDecoder::decode_process_batch(const uint8_t* begin, const uint8_t* end) {
  RecordReader in(begin, end, number_);
  while (!in.done()) {
    auto tag = static_cast<wire::Tag>(in.tag());
    if (tag == wire::Tag::kModule) {
      TraceModule module;
      module.seq = in.u();
      module.load_bias = in.u();
      module.start = in.u();
      module.end = in.u();
      module.path = in.text(in.u());
      sink_.module(module);
    } else if (tag == wire::Tag::kUnmodule) {
      uint64_t seq = in.u();
      sink_.unmodule(seq, in.u());
    } else if (tag == wire::Tag::kMarker) {
      TraceMarker marker;
      marker.seq = in.u();
      marker.monotonic_ns = in.u();
      marker.rss_bytes = in.u();
      marker.tracer_bytes = in.u();
      sink_.marker(marker);
    } else if (tag == wire::Tag::kEnd) {
      TraceEnd record;
      record.seq = in.u();
      record.monotonic_ns = in.u();
      record.reason = static_cast<wire::EndReason>(in.u());
      record.status = in.s();
      sink_.end(record);
    } else if (tag == wire::Tag::kNote) {
      sink_.note(static_cast<wire::NoteCode>(in.u()));
    } else {
      in.fail(fmt::format("unknown record tag {} in a process batch", static_cast<int>(tag)));
    }
  }
}

class ChunkDecompressor {
 public:
  ChunkDecompressor() : context_(ZSTD_createDCtx()) {
    if (context_ == nullptr) throw std::bad_alloc();
  }
  ~ChunkDecompressor() { ZSTD_freeDCtx(context_); }
  ChunkDecompressor(const ChunkDecompressor&) = delete;
  ChunkDecompressor& operator=(const ChunkDecompressor&) = delete;

  std::span<const std::byte> decompress(std::span<const std::byte> data, int64_t chunk_id) {
    unsigned long long size = ZSTD_getFrameContentSize(data.data(), data.size());
    if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN) {
      throw TraceFormatError(fmt::format("heap trace chunk {} is not a zstd frame memdx wrote", chunk_id));
    }
    if (size > kMaxTraceChunkBytes) {
      throw TraceFormatError(
          fmt::format("heap trace chunk {} claims {} bytes, more than memdx writes in one chunk", chunk_id, size));
    }
    if (size > output_.capacity()) {
      // Exactly this size, the old buffer freed first: resize() would double the capacity and
      // hold the old buffer while it copies (8 + 16 MiB for a chunk of 8).
      std::vector<std::byte>().swap(output_);
      output_.reserve(size);
    }
    output_.resize(size);
    size_t got = ZSTD_decompressDCtx(context_, output_.data(), output_.size(), data.data(), data.size());
    if (ZSTD_isError(got) || got != size) {
      throw TraceFormatError(fmt::format("heap trace chunk {} is corrupt ({})", chunk_id,
                                         ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short"));
    }
    return output_;
  }

 private:
  ZSTD_DCtx* context_;
  std::vector<std::byte> output_;
};

}  // namespace

// ---- ThreadBatchDecoder ------------------------------------------------------------------

// A stack definition waiting for the event after it, whose seq it takes.
struct PendingStack {
  uint32_t id = 0;
  std::vector<uint64_t> frames;
};
// A valid stream has at most one definition waiting per thread; a corrupt one must not make the
// reader hold thousands.
constexpr size_t kMaxPendingStacks = 64;

struct ThreadBatchDecoder::State {
  uint64_t previous_seq = 0;
  uint64_t previous_address = 0;  // of the last kAlloc
  uint64_t alloc_ordinal = 0;
  int32_t tid = 0;
  // The addresses of the thread's last kRecentAllocs kAllocs, allocation n at (n - 1) modulo
  // kRecentAllocs. Grown as the thread allocates: a corrupt stream naming thousands of threads
  // that allocate once each must not cost 32 KiB a thread.
  std::vector<uint64_t> recent;

  void remember_alloc(uint64_t address) {
    ++alloc_ordinal;
    if (recent.size() < wire::kRecentAllocs) {
      recent.push_back(address);
    } else {
      recent[(alloc_ordinal - 1) % wire::kRecentAllocs] = address;
    }
  }
  // The address of the kAlloc `distance` kAllocs back (1 = the latest), 1 <= distance <= alloc_ordinal.
  uint64_t recent_alloc(uint64_t distance) const { return recent[(alloc_ordinal - distance) % wire::kRecentAllocs]; }

  uint32_t stream = 0;
  const uint8_t* at = nullptr;  // the batch being read
  const uint8_t* end = nullptr;
  std::vector<PendingStack> pending;  // definitions waiting for the event after them
};

ThreadBatchDecoder::ThreadBatchDecoder(uint32_t stream, int32_t tid) : state_(std::make_unique<State>()) {
  state_->stream = stream;
  state_->tid = tid;
}
ThreadBatchDecoder::~ThreadBatchDecoder() = default;
ThreadBatchDecoder::ThreadBatchDecoder(ThreadBatchDecoder&&) noexcept = default;
ThreadBatchDecoder& ThreadBatchDecoder::operator=(ThreadBatchDecoder&&) noexcept = default;

void ThreadBatchDecoder::hand_pending(StreamSink& stacks, uint64_t seq) {
  for (const PendingStack& stack : state_->pending) stacks.stack(stack.id, seq, stack.frames);
  state_->pending.clear();
}

void ThreadBatchDecoder::finish(StreamSink& stacks) {
  hand_pending(stacks, state_->previous_seq);
}

void ThreadBatchDecoder::begin(std::span<const uint8_t> payload, bool start, StreamSink& stacks) {
  State& thread = *state_;
  if (start) {
    finish(stacks);
    int32_t tid = thread.tid;
    uint32_t stream = thread.stream;
    thread = {};
    thread.tid = tid;
    thread.stream = stream;
  }
  thread.at = payload.data();
  thread.end = payload.data() + payload.size();
}

bool ThreadBatchDecoder::next(TraceEvent& event, StreamSink& stacks) {
  State& thread = *state_;
  RecordReader in(thread.at, thread.end, thread.stream);
  while (!in.done()) {
    auto tag = static_cast<wire::Tag>(in.tag());
    if (tag == wire::Tag::kStack) {
      auto id = static_cast<uint32_t>(in.u());
      uint64_t depth = in.u();
      if (depth > wire::kMaxMaxDepth) in.fail("a stack deeper than the tracer allows");
      if (thread.pending.size() == kMaxPendingStacks) hand_pending(stacks, thread.previous_seq);
      PendingStack& stack = thread.pending.emplace_back();
      stack.id = id;
      stack.frames.resize(depth);
      for (uint64_t i = 0; i < depth; ++i) {
        stack.frames[i] = i == 0 ? in.u() : stack.frames[i - 1] + static_cast<uint64_t>(in.s());
      }
      thread.at = in.position();
      continue;
    }
    if (tag != wire::Tag::kAlloc && tag != wire::Tag::kFree && tag != wire::Tag::kMmap && tag != wire::Tag::kMunmap &&
        tag != wire::Tag::kFreeRecent && tag != wire::Tag::kProtect) {
      in.fail(fmt::format("unknown record tag {} in a thread batch", static_cast<int>(tag)));
    }
    event = TraceEvent{};
    event.tid = thread.tid;
    event.seq = thread.previous_seq + in.u();
    thread.previous_seq = event.seq;
    if (!thread.pending.empty()) hand_pending(stacks, event.seq);
    if (tag == wire::Tag::kFreeRecent) {
      uint64_t distance = in.u();
      if (distance == 0 || distance > wire::kRecentAllocs || distance > thread.alloc_ordinal) {
        in.fail("a free refers to an allocation the thread never made");
      }
      event.kind = TraceEvent::Kind::kFree;
      event.address = thread.recent_alloc(distance);
    } else {
      event.address = thread.previous_address + static_cast<uint64_t>(in.s());
      switch (tag) {
        case wire::Tag::kAlloc:
          event.kind = TraceEvent::Kind::kAlloc;
          event.size = in.u();
          event.stack = static_cast<uint32_t>(in.u());
          thread.previous_address = event.address;
          thread.remember_alloc(event.address);
          break;
        case wire::Tag::kFree:
          event.kind = TraceEvent::Kind::kFree;
          break;
        case wire::Tag::kMmap:
          event.kind = TraceEvent::Kind::kMmap;
          event.size = in.u();
          event.map_flags = static_cast<uint32_t>(in.u());
          event.stack = static_cast<uint32_t>(in.u());
          break;
        case wire::Tag::kProtect:
          event.kind = TraceEvent::Kind::kProtect;
          event.size = in.u();
          event.map_flags = in.u() != 0 ? 0u : uint32_t{wire::kMapNoAccess};
          break;
        default:
          event.kind = TraceEvent::Kind::kMunmap;
          event.size = in.u();
          break;
      }
    }
    thread.at = in.position();
    return true;
  }
  thread.at = thread.end;
  return false;
}

struct TraceReader::Impl {
  explicit Impl(SinkFor make_sink) : sink_for(std::move(make_sink)) {}

  StreamDecoder& decoder(uint32_t stream) {
    auto& slot = decoders[stream];
    if (!slot) {
      slot = std::make_unique<StreamDecoder>(stream, sink_for(stream));
      ++stats.streams;
    }
    return *slot;
  }

  SinkFor sink_for;
  TraceReadStats stats;
  std::map<uint32_t, std::unique_ptr<StreamDecoder>> decoders;
  std::unique_ptr<ChunkDecompressor> decompressor;  // made on the first compressed chunk
  bool finished = false;
};

TraceReader::TraceReader(SinkFor sink_for) : impl_(std::make_unique<Impl>(std::move(sink_for))) {}
TraceReader::~TraceReader() = default;

void TraceReader::add_compressed_chunk(std::span<const std::byte> zstd_frame, int64_t chunk_id) {
  if (!impl_->decompressor) impl_->decompressor = std::make_unique<ChunkDecompressor>();
  impl_->stats.compressed_bytes += zstd_frame.size();
  add_chunk(impl_->decompressor->decompress(zstd_frame, chunk_id), chunk_id);
}

void TraceReader::add_chunk(std::span<const std::byte> frames, int64_t chunk_id) {
  if (impl_->finished) throw std::logic_error("TraceReader::add_chunk after finish");
  ++impl_->stats.chunks;
  size_t at = 0;
  while (at < frames.size()) {
    trace::ChunkFrameHeader header{};
    if (frames.size() - at < sizeof(header))
      throw TraceFormatError(fmt::format("heap trace chunk {} is cut short", chunk_id));
    std::memcpy(&header, frames.data() + at, sizeof(header));
    at += sizeof(header);
    if (frames.size() - at < header.bytes)
      throw TraceFormatError(fmt::format("heap trace chunk {} is cut short", chunk_id));
    StreamDecoder& decoder = impl_->decoder(header.stream);
    if (header.bytes == 0) {
      decoder.close_by_process();
    } else {
      decoder.feed(frames.data() + at, header.bytes);
    }
    at += header.bytes;
    impl_->stats.stream_bytes += header.bytes;
  }
}

const TraceReadStats& TraceReader::finish() {
  if (!impl_->finished) {
    impl_->finished = true;
    for (auto& [number, decoder] : impl_->decoders) decoder->close(false);
  }
  return impl_->stats;
}

const TraceReadStats& TraceReader::stats() const {
  return impl_->stats;
}

TraceReadStats read_heap_trace(const store::RecordingReader& recording,
                               const std::function<StreamSink&(uint32_t stream)>& sink_for,
                               const std::function<void(uint64_t, uint64_t)>& progress) {
  TraceReader reader(sink_for);
  store::TraceChunkCursor cursor = recording.trace_chunks();
  store::TraceChunk chunk;  // one buffer for every chunk: allocated and faulted in once
  while (cursor.next_into(chunk)) {
    if (chunk.kind != trace::kChunkKind) continue;
    reader.add_compressed_chunk(chunk.data, chunk.id);
    if (progress) progress(reader.stats().compressed_bytes, 0);
  }
  return reader.finish();
}

}  // namespace memdx::analyze
