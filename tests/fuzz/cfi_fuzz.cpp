// libFuzzer target: the input is a loaded object's image with the offsets of its .eh_frame_hdr and
// of a code address (cfi_fuzz_input.h), parsed by the injected tracer's unwinder exactly as it
// parses the libraries of a traced program. Any read outside the image is a finding.
#include <cstddef>
#include <cstdint>

#include "fuzz/cfi_fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  memdx::fuzz::run_cfi_input(data, size);
  return 0;
}
