// libFuzzer target: the input is one decompressed heap-trace chunk, stored in a recording and
// aggregated by analyze::build_heap_trace, as `memdx report` does. Slower than
// trace_reader_fuzz (SQLite per input) but it runs the real per-stack aggregation.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "fuzz/trace_fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // tmpfs: a recording per input must not wear a disk.
  static const std::string recording = "/dev/shm/memdx-profile-fuzz-" + std::to_string(::getpid()) + ".memdx";
  try {
    memdx::fuzz::require_one_line(memdx::fuzz::profile_chunk({data, size}, recording));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "aggregating the trace threw something other than TraceFormatError: %s\n", e.what());
    std::abort();
  }
  return 0;
}
