#include "integration/harness.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>

namespace memdx::test {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

std::vector<char*> c_argv(const std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (const auto& arg : argv) out.push_back(const_cast<char*>(arg.c_str()));
  out.push_back(nullptr);
  return out;
}

std::string read_line(int fd) {
  std::string line;
  char c;
  while (::read(fd, &c, 1) == 1) {
    if (c == '\n') return line;
    line.push_back(c);
  }
  return line;
}

// A child started with stdin from /dev/null and stdout and stderr on pipes.
struct Captured {
  pid_t pid = -1;
  int out = -1;
  int err = -1;
};

// With `own_group`, the child leads a new process group, so that a kill of the group reaches
// everything it started.
Captured start_captured(const std::vector<std::string>& argv, std::optional<uid_t> run_as_uid, bool own_group) {
  int out[2];
  int err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) fail("pipe");
  pid_t pid = ::fork();
  if (pid < 0) fail("fork");
  if (pid == 0) {
    if (own_group) ::setpgid(0, 0);
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(err[1], STDERR_FILENO);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, STDIN_FILENO);
    if (run_as_uid) {
      if (::setgroups(0, nullptr) != 0 || ::setgid(*run_as_uid) != 0 || ::setuid(*run_as_uid) != 0) ::_exit(126);
    }
    auto cargs = c_argv(argv);
    ::execv(cargs[0], cargs.data());
    ::_exit(127);
  }
  if (own_group) ::setpgid(pid, pid);  // also here: no race with a kill of the group
  ::close(out[1]);
  ::close(err[1]);
  return {pid, out[0], err[0]};
}

// Reads the child's stdout and stderr into `result` until both close or the deadline passes;
// false on the deadline. Closes both pipes.
bool drain_until(const Captured& child, CommandResult& result, std::optional<Clock::time_point> deadline) {
  pollfd fds[2] = {{child.out, POLLIN, 0}, {child.err, POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_count = 2;
  bool in_time = true;
  while (open_count > 0) {
    int timeout_ms = -1;
    if (deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now()).count();
      if (left <= 0) {
        in_time = false;
        break;
      }
      timeout_ms = static_cast<int>(left);
    }
    int ready = ::poll(fds, 2, timeout_ms);
    if (ready < 0 && errno != EINTR) fail("poll");
    for (int i = 0; i < 2 && ready > 0; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buffer[65536];
      ssize_t n = ::read(fds[i].fd, buffer, sizeof(buffer));
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<size_t>(n));
      } else {
        fds[i].fd = -1;
        --open_count;
      }
    }
  }
  ::close(child.out);
  ::close(child.err);
  return in_time;
}

void set_status(CommandResult& result, int status) {
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
}

}  // namespace

std::string helper_path(const std::string& name) {
  return std::string(MEMDX_HELPER_DIR) + "/memdx_helper_" + name;
}
std::string memdx_path() {
  return MEMDX_BIN;
}

Helper::Helper(const std::string& name, const std::vector<std::string>& args) {
  int in[2];
  int out[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) fail("pipe");
  std::vector<std::string> argv = {helper_path(name)};
  argv.insert(argv.end(), args.begin(), args.end());
  pid_ = ::fork();
  if (pid_ < 0) fail("fork");
  if (pid_ == 0) {
    ::dup2(in[0], STDIN_FILENO);
    ::dup2(out[1], STDOUT_FILENO);
    auto cargs = c_argv(argv);
    ::execv(cargs[0], cargs.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  stdin_fd_ = in[1];
  for (;;) {
    std::string line = read_line(out[0]);
    if (line == "ready") break;
    if (line.empty()) {
      ::close(out[0]);
      throw std::runtime_error("helper " + name + " did not start");
    }
    preamble_.push_back(line);
  }
  ::close(out[0]);
}

int Helper::wait() {
  int status = 0;
  if (!reaped_) {
    if (stdin_fd_ >= 0) ::close(stdin_fd_);
    stdin_fd_ = -1;
    ::waitpid(pid_, &status, 0);
    reaped_ = true;
  }
  return status;
}

Helper::~Helper() {
  if (reaped_) return;
  if (stdin_fd_ >= 0) ::close(stdin_fd_);
  // Give a helper that reads stdin a moment to leave cleanly, then make sure.
  for (int i = 0; i < 50; ++i) {
    if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
    ::usleep(2000);
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
}

CommandResult run_command(const std::vector<std::string>& argv, std::optional<uid_t> run_as_uid) {
  Captured child = start_captured(argv, run_as_uid, false);
  CommandResult result;
  drain_until(child, result, std::nullopt);
  int status = 0;
  ::waitpid(child.pid, &status, 0);
  set_status(result, status);
  return result;
}

Finished run_for(const std::vector<std::string>& argv, int limit_s) {
  Captured child = start_captured(argv, std::nullopt, true);
  Finished run;
  auto deadline = Clock::now() + std::chrono::seconds(limit_s);
  if (!drain_until(child, run, deadline)) {
    run.timed_out = true;
    ::kill(-child.pid, SIGKILL);
  }
  int status = 0;
  while (::waitpid(child.pid, &status, WNOHANG) == 0) {
    if (Clock::now() >= deadline) {
      run.timed_out = true;
      ::kill(-child.pid, SIGKILL);
      ::waitpid(child.pid, &status, 0);
      break;
    }
    ::usleep(2000);
  }
  set_status(run, status);
  return run;
}

std::string find_on_path(const std::string& name) {
  const char* path_env = std::getenv("PATH");
  std::stringstream dirs(path_env ? path_env : "/usr/local/bin:/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return "";
}

CommandResult run_memdx(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {memdx_path()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv);
}

size_t line_count(const std::string& text) {
  size_t lines = 0;
  for (char c : text) lines += c == '\n';
  if (!text.empty() && text.back() != '\n') ++lines;
  return lines;
}

}  // namespace memdx::test
