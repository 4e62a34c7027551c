// `memdx report REC [--json FILE] [--top N] [--pprof FILE] [--folded FILE [--metric M]]`: analyse a
// recording again; name the call sites of its heap trace; export them for other tools.
#pragma once

#include <CLI/CLI.hpp>

namespace memdx::cli {

void add_report_command(CLI::App& app, int& exit_code);

}  // namespace memdx::cli
