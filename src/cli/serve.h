// `memdx serve TARGET...`: processes' memory for Prometheus, with leak verdicts (serve/).
#pragma once

#include <CLI/CLI.hpp>

namespace memdx::cli {

void add_serve_command(CLI::App& app, int& exit_code);

}  // namespace memdx::cli
