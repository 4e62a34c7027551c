// libFuzzer target: the input is one decompressed heap-trace chunk, decoded by
// analyze::TraceReader into sinks that check the StreamSink contract. The only failure allowed
// is a TraceFormatError with a one-line message; anything else aborts and is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "fuzz/trace_fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    memdx::fuzz::require_one_line(memdx::fuzz::decode_chunk({data, size}));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "the trace reader threw something other than TraceFormatError: %s\n", e.what());
    std::abort();
  }
  return 0;
}
