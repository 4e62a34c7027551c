// `memdx inspect PID|NAME [--tree] [--all] [--json]`: one explained snapshot.
#pragma once

#include <CLI/CLI.hpp>

namespace memdx::cli {

// Adds the subcommand to `app`; its callback runs the command and stores the exit code.
void add_inspect_command(CLI::App& app, int& exit_code);

}  // namespace memdx::cli
