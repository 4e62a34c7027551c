// Starting the command of `run` and `trace`: finding it as execvp would (so a typo fails before
// anything starts), spawning it with default signal dispositions, and turning its wait status
// into memdx's exit code.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace memdx::cli {

// The exit code a shell gives for a command it cannot start.
inline constexpr int kCommandNotFound = 127;

// Where execvp would find `name`; throws RuntimeError saying why not.
std::string resolve_command(const std::string& name);

// The command run/trace start: where it is, and its short name (for file names and messages).
struct ResolvedCommand {
  std::string path;
  std::string name;
};
// resolve_command for command[0]; nullopt after one line on stderr (exit kCommandNotFound).
std::optional<ResolvedCommand> resolve_or_say(const std::vector<std::string>& command);

// Starts the command with `environment` ("NAME=value" entries); -1 (after one line on stderr)
// when it cannot start.
pid_t spawn_target(const std::string& path, const std::vector<std::string>& command,
                   const std::vector<std::string>& environment);

// The target's exit code, 128+N for a signal N (said on stderr), 1 when unknown.
int exit_code_of(const std::optional<int>& wait_status, const std::string& name);

}  // namespace memdx::cli
