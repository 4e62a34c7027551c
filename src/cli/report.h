// `memdx report REC [--json FILE]`: analyse a recording again.
#pragma once

#include <CLI/CLI.hpp>

namespace memdx::cli {

void add_report_command(CLI::App& app, int& exit_code);

}  // namespace memdx::cli
