// `memdx watch PID [options]`: record a running process tree (no heap tracing) and judge it.
#pragma once

#include <CLI/CLI.hpp>

namespace memdx::cli {

void add_watch_command(CLI::App& app, int& exit_code);

}  // namespace memdx::cli
