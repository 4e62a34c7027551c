// memdx_trace_seeds RECORDING OUTPUT [STREAM_BYTES]: turns the heap trace of a real recording
// (made with `memdx trace -o`) into one small fuzz seed: a decompressed chunk whose streams are
// the recording's, each cut to about STREAM_BYTES (default 1536) of whole, valid records.
//
// Per stream it keeps the hello, a prefix of every thread's batches (at most kThreadBytes) (a thread's deltas run on
// from its previous batch, so a thread stops at the first batch that has to be cut, which is
// cut at a record boundary) and the small process batches (markers, the end record). The
// streams are then interleaved in short frames, as the collector interleaves busy processes,
// and closed where the recording closed them.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <zstd.h>

#include "store/recording_reader.h"
#include "trace/format/chunk.h"
#include "trace/format/wire.h"

namespace {
namespace wire = memdx::trace::wire;

constexpr size_t kFrameBytes = 173;              // odd, so that frames cut batches and varints
constexpr size_t kSmallProcessBatchBytes = 256;  // markers and the end record; not module maps
constexpr size_t kThreadBytes = 1024;            // per thread, so that threads share the budget

struct Stream {
  std::vector<uint8_t> bytes;
  bool closed = false;
};

std::vector<uint8_t> decompress(const std::vector<std::byte>& data) {
  unsigned long long size = ZSTD_getFrameContentSize(data.data(), data.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN) throw std::runtime_error("not a zstd frame");
  std::vector<uint8_t> out(size);
  size_t got = ZSTD_decompress(out.data(), out.size(), data.data(), data.size());
  if (ZSTD_isError(got) || got != size) throw std::runtime_error("corrupt zstd frame");
  return out;
}

// Every stream's bytes in order, reassembled from the recording's chunks.
std::map<uint32_t, Stream> read_streams(const std::string& path) {
  auto recording = memdx::store::RecordingReader::open(path);
  std::map<uint32_t, Stream> streams;
  auto cursor = recording.trace_chunks();
  while (auto chunk = cursor.next()) {
    if (chunk->kind != memdx::trace::kChunkKind) continue;
    std::vector<uint8_t> raw = decompress(chunk->data);
    for (size_t at = 0; at < raw.size();) {
      memdx::trace::ChunkFrameHeader header{};
      std::memcpy(&header, raw.data() + at, sizeof(header));
      at += sizeof(header);
      Stream& stream = streams[header.stream];
      if (header.bytes == 0) stream.closed = true;
      stream.bytes.insert(stream.bytes.end(), raw.begin() + static_cast<std::ptrdiff_t>(at),
                          raw.begin() + static_cast<std::ptrdiff_t>(at + header.bytes));
      at += header.bytes;
    }
  }
  return streams;
}

// Bytes of the record at `at` in a thread batch.
size_t record_bytes(const uint8_t* at, const uint8_t* end) {
  const uint8_t* cursor = at + 1;
  auto skip = [&](int fields) {
    uint64_t value = 0;
    for (int i = 0; i < fields; ++i) {
      if (!wire::get_u64(&cursor, end, &value)) throw std::runtime_error("corrupt record");
    }
    return value;
  };
  switch (static_cast<wire::Tag>(*at)) {
    case wire::Tag::kAlloc:
      skip(4);
      break;
    case wire::Tag::kFree:
      skip(2);
      break;
    case wire::Tag::kMmap:
      skip(5);
      break;
    case wire::Tag::kMunmap:
      skip(3);
      break;
    case wire::Tag::kFreeRecent:
      skip(2);
      break;
    case wire::Tag::kStack: {
      skip(1);
      skip(static_cast<int>(skip(1)));
      break;
    }
    default:
      throw std::runtime_error("unknown record tag");
  }
  return static_cast<size_t>(cursor - at);
}

std::vector<uint8_t> batch(const wire::BatchHeader& header, const uint8_t* payload, size_t bytes) {
  wire::BatchHeader cut = header;
  cut.payload_bytes = static_cast<uint32_t>(bytes);
  std::vector<uint8_t> out(sizeof(cut) + bytes);
  std::memcpy(out.data(), &cut, sizeof(cut));
  std::memcpy(out.data() + sizeof(cut), payload, bytes);
  return out;
}

// The stream cut to about `budget` bytes of whole records.
std::vector<uint8_t> shrink(const std::vector<uint8_t>& stream, size_t budget) {
  if (stream.size() < sizeof(wire::StreamHello)) return stream;
  std::vector<uint8_t> out(stream.begin(), stream.begin() + sizeof(wire::StreamHello));
  std::set<int32_t> stopped;  // threads whose batches no longer fit
  std::map<int32_t, size_t> thread_bytes;
  size_t at = sizeof(wire::StreamHello);
  while (stream.size() - at >= sizeof(wire::BatchHeader)) {
    wire::BatchHeader header{};
    std::memcpy(&header, stream.data() + at, sizeof(header));
    const uint8_t* payload = stream.data() + at + sizeof(header);
    if (stream.size() - at - sizeof(header) < header.payload_bytes) break;  // cut off by the recording's end
    at += sizeof(header) + header.payload_bytes;
    std::vector<uint8_t> kept;
    if (static_cast<wire::BatchKind>(header.kind) == wire::BatchKind::kProcess) {
      if (out.size() + header.payload_bytes <= budget || header.payload_bytes <= kSmallProcessBatchBytes) {
        kept = batch(header, payload, header.payload_bytes);
      }
      out.insert(out.end(), kept.begin(), kept.end());
      continue;
    }
    // A thread start restarts the deltas: a stopped thread may go on from here.
    if (static_cast<wire::BatchKind>(header.kind) == wire::BatchKind::kThreadStart) stopped.erase(header.tid);
    if (!stopped.contains(header.tid)) {
      size_t& used = thread_bytes[header.tid];
      size_t room = std::min(out.size() < budget ? budget - out.size() : 0, kThreadBytes - used);
      size_t bytes = 0;
      while (bytes < header.payload_bytes) {
        size_t next = record_bytes(payload + bytes, payload + header.payload_bytes);
        if (bytes + next > room) break;
        bytes += next;
      }
      if (bytes < header.payload_bytes) stopped.insert(header.tid);
      used += bytes;
      if (bytes > 0) kept = batch(header, payload, bytes);
    }
    out.insert(out.end(), kept.begin(), kept.end());
  }
  return out;
}

void put_frame(std::vector<uint8_t>& seed, uint32_t stream, const uint8_t* bytes, size_t count) {
  memdx::trace::ChunkFrameHeader header{stream, static_cast<uint32_t>(count)};
  const auto* raw = reinterpret_cast<const uint8_t*>(&header);
  seed.insert(seed.end(), raw, raw + sizeof(header));
  seed.insert(seed.end(), bytes, bytes + count);
}

// The streams interleaved in frames of kFrameBytes, then the closes.
std::vector<uint8_t> interleave(const std::map<uint32_t, std::vector<uint8_t>>& streams,
                                const std::map<uint32_t, Stream>& originals) {
  std::vector<uint8_t> seed;
  std::map<uint32_t, size_t> sent;
  for (bool any = true; any;) {
    any = false;
    for (const auto& [number, bytes] : streams) {
      size_t& done = sent[number];
      if (done == bytes.size()) continue;
      size_t count = std::min(kFrameBytes, bytes.size() - done);
      put_frame(seed, number, bytes.data() + done, count);
      done += count;
      any = true;
    }
  }
  for (const auto& [number, original] : originals) {
    if (original.closed) put_frame(seed, number, nullptr, 0);
  }
  return seed;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) {
    std::fprintf(stderr, "usage: memdx_trace_seeds RECORDING OUTPUT [STREAM_BYTES]\n");
    return 2;
  }
  try {
    size_t budget = argc == 4 ? std::stoul(argv[3]) : 1536;
    std::map<uint32_t, Stream> originals = read_streams(argv[1]);
    if (originals.empty()) throw std::runtime_error("the recording has no heap trace");
    std::map<uint32_t, std::vector<uint8_t>> shrunk;
    for (const auto& [number, stream] : originals) shrunk[number] = shrink(stream.bytes, budget);
    std::vector<uint8_t> seed = interleave(shrunk, originals);
    std::ofstream out(argv[2], std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(seed.data()), static_cast<std::streamsize>(seed.size()));
    if (!out.flush()) throw std::runtime_error(std::string("cannot write ") + argv[2]);
    std::printf("%s: %zu streams, %zu bytes\n", argv[2], originals.size(), seed.size());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "memdx_trace_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
