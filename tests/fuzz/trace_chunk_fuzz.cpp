// libFuzzer target: the input is one compressed heap-trace chunk (a zstd frame, as stored in a
// recording). Covers the decompression bounds: a frame that claims a huge size must be refused
// before anything is allocated (run with -rss_limit_mb=2048).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "fuzz/trace_fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    memdx::fuzz::require_one_line(memdx::fuzz::decode_compressed_chunk({data, size}));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "the trace reader threw something other than TraceFormatError: %s\n", e.what());
    std::abort();
  }
  return 0;
}
