// The heap trace as a pprof profile (github.com/google/pprof, proto/profile.proto), the format
// `pprof`, `go tool pprof`, speedscope and Grafana Pyroscope read.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "analyze/heap_profile.h"

namespace memdx::report {

// The malloc-family heap of every traced process image as one profile, gzip-compressed (as
// pprof files are on disk). Sample types, in this order: alloc_objects/count, alloc_space/bytes,
// inuse_objects/count, inuse_space/bytes, "in use" meaning still live when the trace ended (Go's
// meaning); inuse_space is the default. One sample per (process image, stack), labelled with
// the numeric label "pid". Every frame is kept, the runtime's too: pprof's tools fold those
// themselves. Locations are the calls before the return addresses (return address - 1),
// symbolized with their inlined frames; mappings are the modules each process loaded. The
// header's time is `start_unix_ns` (0: unknown), its duration the span of the trace. Symbolizes
// every stack (opens each process's modules, and looks for separate debug files in `debug_dirs`
// too). Throws std::runtime_error when the profile cannot be encoded.
std::string render_pprof(const analyze::HeapTrace& trace, int64_t start_unix_ns,
                         const std::vector<std::string>& debug_dirs = {});

}  // namespace memdx::report
