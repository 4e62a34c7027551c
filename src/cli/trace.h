// `memdx trace -o FILE -- CMD...`: heap trace only, the lowest-overhead capture.
#pragma once

#include <CLI/CLI.hpp>

namespace memdx::cli {

void add_trace_command(CLI::App& app, int& exit_code);

}  // namespace memdx::cli
