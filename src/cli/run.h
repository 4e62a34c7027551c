// `memdx run [options] -- CMD...`: run CMD, record its whole process tree, print a verdict.
#pragma once

#include <CLI/CLI.hpp>

namespace memdx::cli {

void add_run_command(CLI::App& app, int& exit_code);

}  // namespace memdx::cli
