#include "fuzz/trace_fuzz_input.h"

#include <zstd.h>

#include <cstdio>
#include <cstdlib>
#include <map>

#include <fmt/format.h>

#include "analyze/heap_profile.h"
#include "analyze/trace_decode.h"
#include "store/recording_reader.h"
#include "store/recording_writer.h"
#include "trace/format/chunk.h"

namespace memdx::fuzz {
namespace {
namespace wire = trace::wire;
using analyze::TraceEvent;

// One stream's sink: checks the order of the calls and reads every value it is handed, so that
// a dangling span or an uninitialised field shows up under ASan and UBSan.
class ContractSink final : public analyze::StreamSink {
 public:
  ContractSink(uint32_t stream, DecodeCounts& counts) : stream_(stream), counts_(counts) {}

  void hello(const wire::StreamHello& hello) override {
    require(!hello_seen_, "a second hello");
    require(!closed_, "hello after closed");
    hello_seen_ = true;
    ++counts_.hellos;
    checksum_ += static_cast<uint64_t>(hello.pid) + hello.start_monotonic_ns + hello.sample_bytes + hello.flags;
  }
  void event(const TraceEvent& event) override {
    require_open("event");
    switch (event.kind) {
      case TraceEvent::Kind::kAlloc:
      case TraceEvent::Kind::kFree:
      case TraceEvent::Kind::kMmap:
      case TraceEvent::Kind::kMunmap:
      case TraceEvent::Kind::kProtect:
        break;
      default:
        violate("an event of no known kind");
    }
    ++counts_.events;
    checksum_ +=
        event.seq + event.address + event.size + event.stack + event.map_flags + static_cast<uint64_t>(event.tid);
  }
  void stack(uint32_t id, uint64_t seq, std::span<const uint64_t> frames) override {
    require_open("stack");
    require(frames.size() <= wire::kMaxMaxDepth, "a stack deeper than the tracer allows");
    ++counts_.stacks;
    checksum_ += id + seq;
    for (uint64_t frame : frames) checksum_ += frame;
  }
  void module(const analyze::TraceModule& module) override {
    require_open("module");
    ++counts_.modules;
    checksum_ += module.seq + module.load_bias + module.start + module.end;
    for (char c : module.path) checksum_ += static_cast<uint8_t>(c);
  }
  void unmodule(uint64_t seq, uint64_t load_bias) override {
    require_open("unmodule");
    checksum_ += seq + load_bias;
  }
  void marker(const analyze::TraceMarker& marker) override {
    require_open("marker");
    ++counts_.markers;
    checksum_ += marker.seq + marker.monotonic_ns + marker.rss_bytes + marker.tracer_bytes;
  }
  void end(const analyze::TraceEnd& end) override {
    require_open("end");
    ++counts_.ends;
    checksum_ += end.seq + end.monotonic_ns + static_cast<uint64_t>(end.reason) + static_cast<uint64_t>(end.status);
  }
  void note(wire::NoteCode code) override {
    require_open("note");
    checksum_ += static_cast<uint64_t>(code);
  }
  void closed(bool clean) override {
    require(!closed_, "closed twice");
    closed_ = true;
    if (clean) ++counts_.clean_closes;
  }

  bool is_closed() const { return closed_; }
  // Read by the caller so that the reads above cannot be optimised away.
  uint64_t checksum() const { return checksum_; }

 private:
  void require_open(const char* call) {
    require(hello_seen_, fmt::format("{} before hello", call));
    require(!closed_, fmt::format("{} after closed", call));
  }
  void require(bool holds, const std::string& what) {
    if (!holds) violate(what);
  }
  [[noreturn]] void violate(const std::string& what) {
    throw ContractViolation(fmt::format("stream {}: the reader broke the sink contract: {}", stream_, what));
  }

  uint32_t stream_;
  DecodeCounts& counts_;
  bool hello_seen_ = false;
  bool closed_ = false;
  uint64_t checksum_ = 0;
};

// The reader with one ContractSink per stream; checks after finish() that every stream closed.
class ContractReader {
 public:
  explicit ContractReader(DecodeCounts& counts)
      : counts_(counts), reader_([this](uint32_t stream) -> analyze::StreamSink& { return sink_for(stream); }) {}

  analyze::TraceReader& reader() { return reader_; }

  void finish() {
    reader_.finish();
    uint64_t checksum = 0;
    for (const auto& [stream, sink] : sinks_) {
      if (!sink.is_closed()) throw ContractViolation(fmt::format("stream {} was never closed", stream));
      checksum += sink.checksum();
    }
    // Opaque to the optimiser: the sinks' reads must happen.
    asm volatile("" : : "r"(checksum));
  }

 private:
  analyze::StreamSink& sink_for(uint32_t stream) {
    auto [slot, fresh] = sinks_.try_emplace(stream, stream, counts_);
    if (!fresh) throw ContractViolation(fmt::format("a second sink asked for stream {}", stream));
    ++counts_.streams;
    return slot->second;
  }

  DecodeCounts& counts_;
  std::map<uint32_t, ContractSink> sinks_;  // stable addresses; declared before the reader
  analyze::TraceReader reader_;
};

std::span<const std::byte> as_bytes(std::span<const uint8_t> data) {
  return {reinterpret_cast<const std::byte*>(data.data()), data.size()};
}

}  // namespace

std::optional<std::string> decode_chunk(std::span<const uint8_t> chunk, DecodeCounts* counts) {
  DecodeCounts local;
  ContractReader reader(counts != nullptr ? *counts : local);
  try {
    reader.reader().add_chunk(as_bytes(chunk), 1);
    reader.finish();
  } catch (const analyze::TraceFormatError& e) {
    return e.what();
  }
  return std::nullopt;
}

std::optional<std::string> decode_compressed_chunk(std::span<const uint8_t> zstd_frame) {
  DecodeCounts counts;
  ContractReader reader(counts);
  try {
    reader.reader().add_compressed_chunk(as_bytes(zstd_frame), 1);
    reader.finish();
  } catch (const analyze::TraceFormatError& e) {
    return e.what();
  }
  return std::nullopt;
}

std::vector<uint8_t> compress_chunk(std::span<const uint8_t> chunk) {
  std::vector<uint8_t> out(ZSTD_compressBound(chunk.size()));
  size_t bytes = ZSTD_compress(out.data(), out.size(), chunk.data(), chunk.size(), 1);
  if (ZSTD_isError(bytes)) throw std::runtime_error(std::string("zstd: ") + ZSTD_getErrorName(bytes));
  out.resize(bytes);
  return out;
}

std::optional<std::string> profile_chunk(std::span<const uint8_t> chunk, const std::string& recording_path) {
  {
    model::RecordingMeta meta;
    meta.kind = "trace";
    store::RecordingWriter writer = store::RecordingWriter::create(recording_path, meta, /*overwrite=*/true);
    std::vector<uint8_t> compressed = compress_chunk(chunk);
    writer.add_trace_chunk(trace::kChunkKind, 1, 0, as_bytes(compressed));
    writer.close();
  }
  store::RecordingReader recording = store::RecordingReader::open(recording_path);
  try {
    analyze::HeapTrace profile = analyze::build_heap_trace(recording);
    uint64_t checksum = 0;
    for (const analyze::ProcessHeapProfile& process : profile.processes) {
      checksum += process.heap.live_bytes + process.mapped.live_bytes + process.timeline.size();
    }
    asm volatile("" : : "r"(checksum));
  } catch (const analyze::TraceFormatError& e) {
    return e.what();
  }
  return std::nullopt;
}

void require_one_line(const std::optional<std::string>& error) {
  if (!error) return;
  if (error->empty() || error->find('\n') != std::string::npos) {
    std::fprintf(stderr, "the reader's error is not one line: [%s]\n", error->c_str());
    std::abort();
  }
}

}  // namespace memdx::fuzz
