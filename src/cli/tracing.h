// What `run` and `trace` need to inject the heap tracer: where libmemdx_trace.so is, whether
// LD_PRELOAD can reach the command at all, and its options.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "record/tree_recording.h"

namespace CLI {
class App;
}

namespace memdx::cli {

using record::TraceSettings;

// libmemdx_trace.so next to the memdx executable (the build tree) or where the install put it
// (LIBDIR/memdx/, reached from BINDIR); nullopt when neither exists.
std::optional<std::string> find_tracer_library();

// Why LD_PRELOAD cannot reach the program at `path` ("is statically linked", "is setuid"), for
// a script its interpreter; nullopt when tracing can work.
std::optional<std::string> why_untraceable(const std::string& path);

// --sample-bytes and --max-depth, shared by run and trace.
void add_trace_options(CLI::App& command, TraceSettings& settings);

// The tracer library to inject into the program at `path`; nullopt, after one line on stderr
// saying why and that memory is sampled only, when the library is missing or LD_PRELOAD cannot
// reach the program.
std::optional<std::string> tracer_for(const std::string& path);

}  // namespace memdx::cli
