#include "cli/launch.h"

#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "cli/errors.h"
#include "model/terminal_text.h"

namespace memdx::cli {

// Where execvp would find `name`, or why it cannot: the error is shown before anything starts.
std::string resolve_command(const std::string& name) {
  auto executable = [](const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
  };
  if (name.find('/') != std::string::npos) {
    if (executable(name)) return name;
    struct stat st {};
    std::string shown = model::terminal_safe(name);
    throw RuntimeError(::stat(name.c_str(), &st) == 0
                           ? fmt::format("{}: permission denied (not an executable file)", shown)
                           : fmt::format("{}: no such file", shown));
  }
  const char* path_env = std::getenv("PATH");
  std::string path_list = path_env ? path_env : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= path_list.size()) {
    size_t end = path_list.find(':', start);
    if (end == std::string::npos) end = path_list.size();
    std::string dir = path_list.substr(start, end - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (executable(candidate)) return candidate;
    start = end + 1;
  }
  throw RuntimeError(fmt::format("{}: command not found", model::terminal_safe(name)));
}

std::optional<ResolvedCommand> resolve_or_say(const std::vector<std::string>& command) {
  try {
    return ResolvedCommand{resolve_command(command[0]), command[0].substr(command[0].rfind('/') + 1)};
  } catch (const RuntimeError& e) {
    std::fprintf(stderr, "memdx: %s\n", e.what());
    return std::nullopt;
  }
}

pid_t spawn_target(const std::string& path, const std::vector<std::string>& command,
                   const std::vector<std::string>& environment) {
  std::vector<char*> envp;
  envp.reserve(environment.size() + 1);
  for (const auto& entry : environment) envp.push_back(const_cast<char*>(entry.c_str()));
  envp.push_back(nullptr);
  std::vector<char*> argv;
  argv.reserve(command.size() + 1);
  for (const auto& arg : command) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty;
  sigemptyset(&empty);
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGCHLD, SIGPIPE}) sigaddset(&defaults, sig);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = 0;
  int err = ::posix_spawn(&pid, path.c_str(), nullptr, &attr, argv.data(), envp.data());
  posix_spawnattr_destroy(&attr);
  if (err != 0) {
    std::fprintf(stderr, "memdx: cannot start %s: %s\n", model::terminal_safe(command[0]).c_str(), std::strerror(err));
    return -1;
  }
  return pid;
}

int exit_code_of(const std::optional<int>& wait_status, const std::string& name) {
  if (!wait_status) return 1;
  if (WIFEXITED(*wait_status)) return WEXITSTATUS(*wait_status);
  if (WIFSIGNALED(*wait_status)) {
    int sig = WTERMSIG(*wait_status);
    const char* abbrev = sigabbrev_np(sig);
    std::fprintf(stderr, "memdx: %s was killed by signal SIG%s (%s)\n", model::terminal_safe(name).c_str(),
                 abbrev ? abbrev : "?", strsignal(sig));
    return 128 + sig;
  }
  return 1;
}

}  // namespace memdx::cli
