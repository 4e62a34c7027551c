// How memdx stores the tracer's streams: the collector multiplexes every connection's bytes
// into chunks, compresses each chunk with zstd, and stores it as one row of the recording's
// trace_chunks table (kind kChunkKind). Decompressed, a chunk is a series of frames:
//
//   u32 stream (the collector's number for a connection, from 1), u32 bytes, bytes...
//
// Frames of one stream, read in chunk order, give that stream's bytes in order (see wire.h).
// A frame of 0 bytes says the stream was closed by the traced process (cleanly or by its end);
// a stream without one was cut short (memdx itself stopped).
#pragma once

#include <cstdint>

namespace memdx::trace {

inline constexpr char kChunkKind[] = "memdx.heap/1";

struct ChunkFrameHeader {
  uint32_t stream;
  uint32_t bytes;
};

}  // namespace memdx::trace
