// Runs real programs for the integration tests: helpers with a known memory layout, and the
// memdx binary itself, capturing exit code, stdout and stderr.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace memdx::test {

std::string helper_path(const std::string& name);  // e.g. "reserve_touch"
std::string memdx_path();

// A helper process started with a pipe on stdin and stdout. Waits for its "ready" line;
// closing stdin (or SIGKILL, for helpers that closed it) ends it in the destructor.
class Helper {
 public:
  explicit Helper(const std::string& name, const std::vector<std::string>& args = {});
  ~Helper();
  Helper(const Helper&) = delete;
  Helper& operator=(const Helper&) = delete;

  pid_t pid() const { return pid_; }
  // Lines the helper printed before "ready".
  const std::vector<std::string>& preamble() const { return preamble_; }
  // Waits for the helper to exit; returns its wait status.
  int wait();

 private:
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  bool reaped_ = false;
  std::vector<std::string> preamble_;
};

struct CommandResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  std::string out;
  std::string err;
};

// Runs argv (argv[0] a path) to completion. With `run_as_uid`, the child drops to that uid
// and gid before exec.
CommandResult run_command(const std::vector<std::string>& argv, std::optional<uid_t> run_as_uid = std::nullopt);

// A command run with a deadline; timed_out when it ran past it and was killed (with its process
// group) instead.
struct Finished : CommandResult {
  bool timed_out = false;
};

// Runs argv (argv[0] a path) in a process group of its own, stdin from /dev/null, stdout and
// stderr captured; kills the whole group after `limit_s` seconds, so that a hang fails a test
// quickly instead of stalling ctest.
Finished run_for(const std::vector<std::string>& argv, int limit_s = 60);
CommandResult run_memdx(const std::vector<std::string>& args);

// Where execvp would find `name`; empty when it is not installed.
std::string find_on_path(const std::string& name);

// Counts lines of `text` (a trailing newline does not add one).
size_t line_count(const std::string& text);

}  // namespace memdx::test
