// What one fuzz input does to memdx's heap-trace reader, shared by the libFuzzer targets (built
// with clang when MEMDX_FUZZ is on) and the replay test that runs in every build.
//
// An input is the content of one decompressed trace chunk: frames of {u32 stream, u32 bytes,
// bytes} (trace/format/chunk.h), as the seeds in corpus/ hold them. Each function returns the
// TraceFormatError message when the reader refused the input, nullopt when it decoded. Anything
// else the reader throws, and every broken promise of the StreamSink contract (thrown as
// ContractViolation), propagates: those are the bugs the fuzzer looks for.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace memdx::fuzz {

struct ContractViolation : std::logic_error {
  using std::logic_error::logic_error;
};

// What the sinks received, summed over streams: lets a test tell a real trace from an empty one.
struct DecodeCounts {
  uint64_t streams = 0;
  uint64_t hellos = 0;
  uint64_t events = 0;
  uint64_t stacks = 0;
  uint64_t modules = 0;
  uint64_t markers = 0;
  uint64_t ends = 0;
  uint64_t clean_closes = 0;
};

// Feeds the input to analyze::TraceReader as one decompressed chunk, into sinks that check the
// StreamSink contract (hello first, nothing after closed, closed exactly once, one sink per
// stream, stacks no deeper than the tracer allows) and read every value they are handed.
std::optional<std::string> decode_chunk(std::span<const uint8_t> chunk, DecodeCounts* counts = nullptr);

// Feeds the input to analyze::TraceReader as one compressed chunk (a zstd frame).
std::optional<std::string> decode_compressed_chunk(std::span<const uint8_t> zstd_frame);

// The path `memdx report` takes: compresses the input, stores it as the only trace chunk of a
// fresh recording at `recording_path` (replaced if it exists), and aggregates it with
// analyze::build_heap_trace. Slower (SQLite), but it runs the real per-stack aggregation.
std::optional<std::string> profile_chunk(std::span<const uint8_t> chunk, const std::string& recording_path);

// zstd level 1, as the collector compresses.
std::vector<uint8_t> compress_chunk(std::span<const uint8_t> chunk);

// Aborts with the message on stderr unless it is one non-empty line: the fuzz targets' check.
void require_one_line(const std::optional<std::string>& error);

}  // namespace memdx::fuzz
